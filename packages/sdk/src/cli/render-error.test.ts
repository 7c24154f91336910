/**
 * The CLI words errors in flags. Every error here is made by the real package that throws it
 * (a real taken port, a real closed port, a real relay refusing a key, a real empty PATH), so the
 * facts the renderer reads are the ones those packages really carry.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { waitForHealthy } from '@taskapp/health-checker'
import { InProcessTaskApp } from '@taskapp/in-process'
import { listen } from '@taskapp/port-manager'
import { listenLoopback } from '@taskapp/test-utils'
import { cloudflareQuickTunnel, installCloudflared } from '@taskapp/tunnel-cloudflare'
import { synthTunnel } from '@taskapp/tunnel-synth'
import { createRelayServer } from '@taskapp/tunnel-synth/relay'
import { afterAll, describe, expect, it, onTestFinished } from 'vitest'
import { parseCommand, type ServeCommand } from './args'
import { renderError, type RenderedError } from './render-error'
import { serveOptions } from './serve'

const ECHO_APP = fileURLToPath(new URL('../fixtures/echo-app.ts', import.meta.url))

/** Library words a CLI message must never use: the CLI's user passes flags, not these options. */
const LIBRARY_WORDS =
  /onConflict|onPortConflict|allowNonLoopback|install: true|apiKey|timeoutMs|taskAppPath|tunnelMode|cloudflaredPath|baseUrl|backendUrl|relayApiKey|relayUrl|maxAttempts/

const seen: RenderedError[] = []
afterAll(() => {
  // every message rendered in this file, checked once more together
  for (const r of seen) expect(r.message).not.toMatch(LIBRARY_WORDS)
})

function serveCmd(...argv: string[]): ServeCommand {
  return parseCommand(['serve', 'app.ts', ...argv]) as ServeCommand
}

function render(err: unknown, ctx: Parameters<typeof renderError>[1]): RenderedError {
  const rendered = renderError(err, ctx)
  seen.push(rendered)
  expect(rendered.message).not.toMatch(LIBRARY_WORDS)
  return rendered
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection')
    },
    (err: unknown) => err,
  )
}

async function heldPort(): Promise<number> {
  const blocker: Server = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  return (blocker.address() as AddressInfo).port
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'taskapp-render-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

describe('port errors name --port and --on-port-conflict', () => {
  it('a taken port (a start failure at bind): the holder, and the three ways out', async () => {
    const port = await heldPort()
    const cmd = serveCmd('--port', String(port), '--on-port-conflict', 'error', '--tunnel', 'local')
    const app = new InProcessTaskApp({ ...serveOptions(cmd), app: () => undefined, taskAppPath: undefined })
    const r = render(await rejection(app.start()), { command: 'serve', serve: cmd })
    expect(r).toMatchObject({ code: 'TASKAPP_ERR_PORT_IN_USE', usage: false, cause: undefined })
    // the holder is this very process: its PID and its command line, cut at 60 characters
    expect(r.message).toMatch(
      new RegExp(`^port ${port} on 127\\.0\\.0\\.1 is taken by PID ${process.pid} \\(.{1,60}\\): `),
    )
    expect(r.message).toContain(
      `: choose another --port, or --on-port-conflict kill to stop PID ${process.pid} first, or --on-port-conflict next to serve on the next free port.`,
    )
  })

  it('no free port: --port 0', async () => {
    const port = await heldPort()
    const err = await rejection(listen(createServer(), { port, maxAttempts: 1 }))
    const r = render(err, { command: 'serve', serve: serveCmd() })
    expect(r.code).toBe('TASKAPP_ERR_NO_FREE_PORT')
    expect(r.message).toBe(
      `no free port found from ${port} on 127.0.0.1 (1 tries): choose another --port, or --port 0 for any free port.`,
    )
  })
})

describe('health errors', () => {
  /** A real timeout: nothing listens on the port (bound, then released), so every probe is refused. */
  async function timeout() {
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const { port } = probe.address() as AddressInfo
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    return rejection(waitForHealthy(`http://127.0.0.1:${port}/health`, { timeoutMs: 200 }))
  }

  it('check: raise --timeout', async () => {
    const r = render(await timeout(), { command: 'check' })
    expect(r.code).toBe('TASKAPP_ERR_HEALTH_TIMEOUT')
    expect(r.message).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+\/health did not answer healthy within 200 ms \(\d+ probes; last: .+\)\. If it is only slow, raise --timeout\.$/,
    )
  })

  it('serve: the usual causes and -v; at the verify step, --verify-tunnel', async () => {
    const err = await timeout()
    const health = render(err, { command: 'serve', serve: serveCmd() })
    expect(health.message).toContain('the task app did not answer healthy at http://127.0.0.1:')
    expect(health.message).toContain('(-v shows its logs)')
    const { InProcessError } = await import('@taskapp/in-process')
    const verify = new InProcessError('TASKAPP_ERR_START_FAILED', 'wrapped', { cause: err, step: 'verify' })
    expect(render(verify, { command: 'serve', serve: serveCmd() }).message).toContain(
      'Try again, or leave out --verify-tunnel.',
    )
  })
})

describe('cloudflared', () => {
  it('not found: --install-cloudflared or CLOUDFLARED_PATH', async () => {
    const dir = tempDir()
    const err = await rejection(
      cloudflareQuickTunnel({ env: { PATH: '' }, installDir: dir }).open({
        localUrl: 'http://127.0.0.1:9',
        port: 9,
        host: '127.0.0.1',
      }),
    )
    const r = render(err, { command: 'serve', serve: serveCmd('-t', 'quick') })
    expect(r.code).toBe('TASKAPP_ERR_CLOUDFLARED_NOT_FOUND')
    expect(r.message).toContain(
      `cloudflared was not found (looked at CLOUDFLARED_PATH, PATH and ${dir}): add --install-cloudflared to download a checksum-verified copy into that cache, or set CLOUDFLARED_PATH to the binary`,
    )
    const bad = render(
      await rejection(
        cloudflareQuickTunnel({ env: { CLOUDFLARED_PATH: join(dir, 'nope') } }).open({
          localUrl: 'http://127.0.0.1:9',
          port: 9,
          host: '127.0.0.1',
        }),
      ),
      { command: 'serve' },
    )
    expect(bad.message).toBe(
      `CLOUDFLARED_PATH=${join(dir, 'nope')} is not an executable file: fix it, or unset it to search PATH and the install cache.`,
    )
  })

  it('a failed download keeps what happened and says what to do without library options', async () => {
    await using mirror = await listenLoopback((_req, res) => res.writeHead(404).end())
    const err = await rejection(
      installCloudflared({
        version: '2026.8.2',
        dir: tempDir(),
        baseUrl: mirror.url,
        sha256: 'a'.repeat(64),
      }),
    )
    const r = render(err, { command: 'serve' })
    expect(r.code).toBe('TASKAPP_ERR_INSTALL_DOWNLOAD')
    expect(r.message).toMatch(
      /^Could not download .*404.*\. Check the network, or install cloudflared yourself and set CLOUDFLARED_PATH/,
    )
  })
})

describe('relay errors name --relay-url and the key flags', () => {
  const target = { localUrl: 'http://127.0.0.1:9', port: 9, host: '127.0.0.1' }

  it('a refused key', async () => {
    await using relay = await createRelayServer({ apiKeys: ['right'], port: 0, host: '127.0.0.1' })
    const err = await rejection(synthTunnel({ backendUrl: relay.url, apiKey: 'wrong', env: {} }).open(target))
    const r = render(err, { command: 'serve' })
    expect(r.code).toBe('TASKAPP_ERR_SYNTH_LEASE_REFUSED')
    expect(r.message).toMatch(
      /^The SynthTunnel backend refused the lease \(HTTP 40[13]\)\. Check the relay key: --relay-api-key-file <path>, TASKAPP_RELAY_API_KEY for your relay, SYNTH_API_KEY for Synth's\.$/,
    )
  })

  it('a relay that does not answer', async () => {
    const probe = createServer()
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
    const { port } = probe.address() as AddressInfo
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const err = await rejection(
      synthTunnel({ backendUrl: `http://127.0.0.1:${port}`, apiKey: 'k', env: {} }).open(target),
    )
    const r = render(err, { command: 'serve' })
    expect(r.code).toBe('TASKAPP_ERR_SYNTH_BACKEND_UNREACHABLE')
    expect(r.message).toMatch(/Check --relay-url \(or TASKAPP_RELAY_URL\) and the network\.$/)
  })
})

describe('invalid options and files', () => {
  it('an option a flag set wrong is bad usage, named by its flag', () => {
    const cmd = { ...serveCmd('--api-key', '', '-t', 'local'), file: ECHO_APP }
    let err: unknown
    try {
      new InProcessTaskApp(serveOptions(cmd))
    } catch (e) {
      err = e
    }
    const r = render(err, { command: 'serve', serve: cmd })
    expect(r).toEqual({
      message: 'invalid --api-key (or ENVIRONMENT_API_KEY): expected a non-empty string.',
      code: 'TASKAPP_ERR_INVALID_OPTIONS',
      usage: true,
      cause: undefined,
    })
  })

  it('a missing file or a folder: the path as typed and as looked for', () => {
    const dir = tempDir()
    const attempt = (file: string) => {
      const cmd = { ...serveCmd('-t', 'local'), file }
      try {
        new InProcessTaskApp(serveOptions(cmd))
      } catch (err) {
        return render(err, { command: 'serve', serve: cmd })
      }
      throw new Error('expected a failure')
    }
    expect(attempt(join(dir, 'none.ts')).message).toBe(
      `the task app file ${join(dir, 'none.ts')} does not exist.`,
    )
    expect(attempt('no-such-dir/app.ts').message).toBe(
      `the task app file no-such-dir/app.ts does not exist (looked for ${join(process.cwd(), 'no-such-dir/app.ts')}).`,
    )
    expect(attempt(dir).message).toBe(`the task app path ${dir} is not a file.`)
  })

  it('anything else: the message as it is, the step it failed at, the cause when it adds something', async () => {
    expect(render(new Error('boom'), { command: 'serve' })).toEqual({
      message: 'boom',
      code: undefined,
      usage: false,
      cause: undefined,
    })
    const app = new InProcessTaskApp({
      app: (_req, res) => res.setHeader('content-type', 'application/json').end('{"healthy":true}'),
      port: 0,
      handleSignals: false,
      tunnel: {
        name: 'broken',
        open: () => Promise.reject(new Error('the tunnel said no', { cause: new Error('ECONNRESET') })),
      },
    })
    const r = render(await rejection(app.start()), { command: 'serve' })
    expect(r).toEqual({
      message: 'opening the tunnel failed: the tunnel said no',
      code: undefined,
      usage: false,
      cause: 'ECONNRESET',
    })
  })
})
