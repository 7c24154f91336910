/**
 * Errors carry their facts (`option`, `env`, `expected`), so another surface (the CLI) can word
 * them its own way; and what `InProcessTaskApp` itself says names its own options, never those of
 * the packages underneath (`onConflict`, `install: true`).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { recordingLogger } from '@taskapp/test-utils'
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { InProcessError } from './errors'
import { InProcessTaskApp } from './in-process-task-app'
import { validateOptions } from './options'
import { clearRelayEnv, plainApp } from './test-helpers'

const app = plainApp()

function thrown(options: unknown): InProcessError {
  try {
    validateOptions(options)
  } catch (err) {
    expect(err).toBeInstanceOf(InProcessError)
    return err as InProcessError
  }
  throw new Error('expected validateOptions to throw')
}

/** The error `start()` rejects with (the app is stopped if it started after all). */
async function startError(
  options: ConstructorParameters<typeof InProcessTaskApp>[0],
): Promise<InProcessError> {
  const started = new InProcessTaskApp(options)
  onTestFinished(() => started.stop())
  const err = await started.start().then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(InProcessError)
  return err as InProcessError
}

afterEach(() => {
  vi.unstubAllEnvs()
})

describe('invalid options carry the option, its environment variables and what was expected', () => {
  it.each([
    [
      'non-loopback host',
      { app, host: '0.0.0.0', tunnel: { mode: 'local' } },
      { option: 'host', env: [], code: 'TASKAPP_ERR_INVALID_HOST' },
    ],
    [
      'empty apiKey',
      { app, apiKey: '', tunnel: { mode: 'local' } },
      { option: 'apiKey', env: ['ENVIRONMENT_API_KEY'], expected: 'a non-empty string' },
    ],
    [
      'bad port',
      { app, port: 80, tunnel: { mode: 'local' } },
      { option: 'port', code: 'TASKAPP_ERR_INVALID_PORT' },
    ],
    [
      'bad relay URL',
      { app, tunnel: { mode: 'synthtunnel', relayUrl: 'ftp://x', relayApiKey: 'k' } },
      { option: 'tunnel.relayUrl', env: ['TASKAPP_RELAY_URL'] },
    ],
    [
      'synthtunnel with no relay and no key',
      { app, tunnel: { mode: 'synthtunnel' } },
      { option: 'tunnel.relayApiKey', env: ['SYNTH_API_KEY', 'TASKAPP_RELAY_URL'] },
    ],
    [
      'named without a token',
      { app, tunnel: { mode: 'named', hostname: 'h.example.invalid' } },
      { option: 'tunnel.token', env: ['CLOUDFLARE_TUNNEL_TOKEN'] },
    ],
    [
      'preconfigured without a URL',
      { app, tunnel: { mode: 'preconfigured' } },
      { option: 'tunnel.url', env: ['TASKAPP_URL', 'SYNTH_TASK_APP_URL', 'SYNTH_CONTAINER_URL'] },
    ],
    [
      'an unknown tunnel mode',
      { app, tunnel: { mode: 'ngrok' } },
      { option: 'tunnel.mode', expected: "one of 'synthtunnel', 'quick', 'named', 'local', 'preconfigured'" },
    ],
    [
      'a task app file that does not exist',
      { taskAppPath: join(tmpdir(), 'no-such-task-app.ts'), tunnel: { mode: 'local' } },
      { option: 'taskAppPath', code: 'TASKAPP_ERR_TASK_APP_NOT_FOUND' },
    ],
  ])('%s', (_name, options, facts) => {
    clearRelayEnv()
    for (const name of [
      'CLOUDFLARE_TUNNEL_TOKEN',
      'TASKAPP_URL',
      'SYNTH_TASK_APP_URL',
      'SYNTH_CONTAINER_URL',
    ])
      vi.stubEnv(name, undefined)
    const { code = 'TASKAPP_ERR_INVALID_OPTIONS', ...rest } = facts as { code?: string }
    const err = thrown(options)
    expect(err.code).toBe(code)
    expect(err).toMatchObject(rest)
  })

  it("says 'the default' only when synthtunnel was not asked for", () => {
    clearRelayEnv()
    expect(thrown({ app }).message).toContain("tunnel mode 'synthtunnel' (the default) needs a relay")
    const explicit = thrown({ app, tunnel: { mode: 'synthtunnel' } }).message
    expect(explicit).toContain("tunnel mode 'synthtunnel' needs a relay")
    expect(explicit).not.toContain('(the default)')
  })

  it('never copies an option value onto the error (some are secrets)', () => {
    const err = thrown({ app, apiKey: 42, tunnel: { mode: 'local' } })
    expect(Object.values(err)).not.toContain(42)
  })
})

describe('tunnel.install: true, or a pinned release', () => {
  it('accepts { version, sha256, baseUrl, checksumUrl } and passes it on as given (URLs without trailing slash)', () => {
    const install = { version: '2026.8.2', sha256: 'a'.repeat(64), baseUrl: 'http://127.0.0.1:9/releases/' }
    expect(validateOptions({ app, tunnel: { mode: 'quick', install } }).tunnel).toEqual({
      mode: 'quick',
      cloudflaredPath: undefined,
      install: { version: '2026.8.2', sha256: 'a'.repeat(64), baseUrl: 'http://127.0.0.1:9/releases' },
    })
  })

  it.each([
    [
      { url: 'x' },
      'tunnel.install',
      /Unknown tunnel\.install key url: it takes version, sha256, baseUrl, checksumUrl/,
    ],
    [{ sha256: 'abc' }, 'tunnel.install.sha256', /expected 64 hex characters/],
    [{ baseUrl: 'file:///tmp' }, 'tunnel.install.baseUrl', /expected an http:\/\/ or https:\/\/ URL/],
    [{ version: '' }, 'tunnel.install.version', /expected a non-empty string/],
  ])('refuses %j naming %s', (install, option, message) => {
    const err = thrown({ app, tunnel: { mode: 'quick', install } })
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_INVALID_OPTIONS', option })
    expect(err.message).toMatch(message)
  })
})

describe('start failures speak InProcessTaskApp words', () => {
  it("a taken port names onPortConflict (not port-manager's onConflict), once, without an ERROR log", async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    onTestFinished(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
    const { port } = blocker.address() as AddressInfo
    const logger = recordingLogger()
    const err = await startError({
      app,
      port,
      onPortConflict: 'error',
      handleSignals: false,
      tunnel: { mode: 'local' },
      logger,
    })
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_START_FAILED', step: 'bind' })
    expect(err.message).toContain(`Port ${port} on 127.0.0.1 is already in use by PID ${process.pid}`)
    expect(err.message).toContain("pass onPortConflict: 'next'")
    expect(err.message).not.toContain('onConflict:')
    // the caller gets the error; the logger only keeps a DEBUG trace of it
    expect(logger.records.filter((r) => r.level === 'error' || r.level === 'warn')).toEqual([])
    expect(logger.records).toContainEqual(
      expect.objectContaining({ level: 'debug', msg: 'task app failed to start (bind)' }),
    )
  })

  it("a missing cloudflared names tunnel: { mode, install: true } and CLOUDFLARED_PATH, not tunnel-cloudflare's install: true", async () => {
    const empty = mkdtempSync(join(tmpdir(), 'in-process-no-cloudflared-'))
    onTestFinished(() => rmSync(empty, { recursive: true, force: true }))
    // Nothing to find: an empty PATH and install cache, no CLOUDFLARED_PATH.
    vi.stubEnv('PATH', empty)
    vi.stubEnv('CLOUDFLARED_PATH', undefined)
    vi.stubEnv('XDG_CACHE_HOME', empty)
    const err = await startError({
      app,
      port: 0,
      handleSignals: false,
      tunnel: { mode: 'quick' },
      logger: recordingLogger(),
    })
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_START_FAILED', step: 'tunnel' })
    expect(err.cause).toMatchObject({
      code: 'TASKAPP_ERR_CLOUDFLARED_NOT_FOUND',
      installDir: join(empty, 'taskapp', 'cloudflared'),
    })
    expect(err.message).toContain(
      "Pass tunnel: { mode: 'quick', install: true } to download a checksum-verified copy",
    )
    expect(err.message).toContain('CLOUDFLARED_PATH')
    expect(err.message).not.toContain('`install: true`')
  })

  it('a relay that refuses the key names tunnel.relayApiKey, not the agent option apiKey', async () => {
    const { createRelayServer } = await import('@taskapp/tunnel-synth/relay')
    await using relay = await createRelayServer({ apiKeys: ['the-right-key'], port: 0, host: '127.0.0.1' })
    clearRelayEnv()
    const err = await startError({
      app,
      port: 0,
      handleSignals: false,
      tunnel: { mode: 'synthtunnel', relayUrl: relay.url, relayApiKey: 'a-wrong-key' },
      logger: recordingLogger(),
    })
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_START_FAILED', step: 'tunnel' })
    expect(err.cause).toMatchObject({ code: 'TASKAPP_ERR_SYNTH_LEASE_REFUSED' })
    expect(err.message).toMatch(
      /refused the lease \(HTTP 40[13]\)\. Check the relay key: tunnel\.relayApiKey, or SYNTH_API_KEY\.$/,
    )
    expect(err.message).not.toContain('apiKey or SYNTH_API_KEY')
  })
})
