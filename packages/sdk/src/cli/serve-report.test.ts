/**
 * `taskapp serve` prints `app.headers` and nothing else as the headers to send: a caller with the
 * printed headers alone (plus a key the user gave, which is never echoed) gets a rollout through,
 * in each mode. Real task app, real relay on loopback; signals through a fake process.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateContainerKeyPair, signContainerToken } from '@taskapp/task-server'
import { createRelayServer } from '@taskapp/tunnel-synth/relay'
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { FakeProcess, captureIo } from '../test-helpers'
import { runCli } from './main'
import type { ServeReport } from './serve'

const ECHO_APP = fileURLToPath(new URL('../fixtures/echo-app.ts', import.meta.url))

/**
 * Runs `taskapp serve` until it prints its report; `await using` stops it (SIGINT), before
 * anything declared earlier (a relay) is disposed.
 */
async function serve(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ out: string } & AsyncDisposable> {
  const io = captureIo()
  const proc = new FakeProcess()
  const done = runCli(['serve', ...argv, '--port', '0'], io, env, proc)
  const stop = async (): Promise<void> => {
    proc.emit('SIGINT')
    await done
  }
  try {
    await expect
      .poll(() => io.out(), { timeout: 20_000, interval: 10 })
      .toMatch(/Press Ctrl\+C to stop\.\n$|^\{.*\}\n$/)
  } catch (err) {
    await stop()
    throw err
  }
  return { out: io.out(), [Symbol.asyncDispose]: stop }
}

/** The `header: Name: value` lines with a plain value (a placeholder `<...>` is not a value). */
function printedHeaders(out: string): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const m of out.matchAll(/^ {2}header: ([A-Za-z0-9-]+): ([^<\s]\S*)$/gm)) headers[m[1]!] = m[2]!
  return headers
}

async function rollout(url: string, headers: Record<string, string>): Promise<number> {
  const res = await fetch(`${url}/rollout`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ trace_correlation_id: 'p-1', env: { seed: 2 }, policy: { config: {} } }),
  })
  await res.arrayBuffer()
  return res.status
}

beforeEach(() => {
  vi.stubEnv('ENVIRONMENT_API_KEY', undefined)
  vi.stubEnv('SYNTH_CONTAINER_TRUSTED_PUBKEYS', undefined)
  vi.stubEnv('SYNTH_CONTAINER_AUTH_MODE', undefined)
})
afterEach(() => {
  vi.unstubAllEnvs()
})

describe('taskapp serve: the printed headers are exactly what a caller sends', () => {
  it('local, generated key: X-API-Key with its value; the printed headers alone pass, none → 400', async () => {
    await using outServed = await serve([ECHO_APP, '--tunnel', 'local'])
    const out = outServed.out
    const url = /^ {2}url: +(\S+)$/m.exec(out)![1]!
    const headers = printedHeaders(out)
    expect(Object.keys(headers)).toEqual(['X-API-Key'])
    expect(headers['X-API-Key']).toMatch(/^tk_/)
    expect(await rollout(url, headers)).toBe(200)
    expect(await rollout(url, {})).toBe(400)
  })

  it('local, key in ENVIRONMENT_API_KEY: a placeholder naming it, never the key; --json lists it in withheldHeaders', async () => {
    await using outServed = await serve([ECHO_APP, '--tunnel', 'local'], {
      ENVIRONMENT_API_KEY: 'env-key-abcdef123',
    })
    const out = outServed.out
    expect(out).toMatch(/^ {2}header: X-API-Key: <the key in ENVIRONMENT_API_KEY, env-…>$/m)
    expect(out).not.toContain('env-key-abcdef123')
    await using jsonServed = await serve([ECHO_APP, '--tunnel', 'local', '--json'], {
      ENVIRONMENT_API_KEY: 'env-key-abcdef123',
    })
    const json = jsonServed.out
    const report = JSON.parse(json) as ServeReport
    expect(report).toMatchObject({ headers: {}, withheldHeaders: ['X-API-Key'], apiKeySource: 'env' })
    expect(json).not.toContain('env-key-abcdef123')
    expect(await rollout(report.url, { 'X-API-Key': 'env-key-abcdef123' })).toBe(200)
  })

  it("a key in the file's own apiKeys: apiKeySource 'config', withheld, not called generated", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskapp-serve-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'keyed-app.ts')
    writeFileSync(
      file,
      `import { buildConfig as echo } from ${JSON.stringify(ECHO_APP)}\n` +
        `export const buildConfig = () => ({ ...echo(), apiKeys: ['file-config-key-1'] })\n`,
    )
    await using served = await serve([file, '--tunnel', 'local', '--json'])
    const report = JSON.parse(served.out) as ServeReport
    expect(report).toMatchObject({ headers: {}, withheldHeaders: ['X-API-Key'], apiKeySource: 'config' })
    await using textServed = await serve([file, '--tunnel', 'local'])
    const text = textServed.out
    expect(text).toMatch(/^ {2}header: X-API-Key: <the key in your task app's apiKeys, file…>$/m)
    expect(text).not.toContain('file-config-key-1')
  })

  it('relay, older generation: the worker token only (the agent adds the key); it alone passes', async () => {
    await using relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
    await using outServed = await serve([ECHO_APP, '--relay-url', relay.url], {
      TASKAPP_RELAY_API_KEY: relay.apiKey,
    })
    const out = outServed.out
    const url = /^ {2}url: +(\S+)$/m.exec(out)![1]!
    const headers = printedHeaders(out)
    expect(Object.keys(headers)).toEqual(['X-SynthTunnel-Worker-Token'])
    expect(out).not.toContain('X-API-Key')
    expect(await rollout(url, headers)).toBe(200)
    expect(await rollout(url, {})).toBe(401)
  })

  it('relay, both generations: worker token + X-API-Key (the key you gave, as a placeholder); a token is the other way in', async () => {
    const pair = generateContainerKeyPair({ kid: 'k1' })
    await using relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
    await using served = await serve([ECHO_APP, '--relay-url', relay.url, '--container-keys', pair.trusted], {
      TASKAPP_RELAY_API_KEY: relay.apiKey,
      ENVIRONMENT_API_KEY: 'both-generations-key',
    })
    const url = /^ {2}url: +(\S+)$/m.exec(served.out)![1]!
    const headers = printedHeaders(served.out)
    expect(Object.keys(headers)).toEqual(['X-SynthTunnel-Worker-Token'])
    expect(served.out).toMatch(/^ {2}header: X-API-Key: <the key in ENVIRONMENT_API_KEY, both…>$/m)
    expect(served.out).toMatch(
      /^ {2}tokens: .*signed by Synth's backend.*a caller without one sends the X-API-Key above$/m,
    )
    expect(await rollout(url, { ...headers, 'X-API-Key': 'both-generations-key' })).toBe(200)
    expect(await rollout(url, headers)).toBe(401)
    const token = await signContainerToken({
      privateKey: pair.privateKey,
      kid: 'k1',
      scopes: ['rollout'],
      ttlMs: 60_000,
    })
    expect(await rollout(url, { ...headers, 'X-Synth-Container-Authorization': `Bearer ${token}` })).toBe(200)
  })

  it('token-only, local: no header, and the tokens line says a signed token is needed besides', async () => {
    const pair = generateContainerKeyPair({ kid: 'k1' })
    await using outServed = await serve([ECHO_APP, '--tunnel', 'local', '--container-keys', pair.trusted])
    const out = outServed.out
    expect(printedHeaders(out)).toEqual({})
    expect(out).toMatch(/^ {2}tokens: .*\(none to hand over\); needed besides the headers above$/m)
    expect(out).not.toContain('(none needed)')
  })

  it('requireApiKey off: says no header is needed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskapp-serve-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'open-app.ts')
    writeFileSync(
      file,
      `import { buildConfig as echo } from ${JSON.stringify(ECHO_APP)}\n` +
        `export const buildConfig = () => ({ ...echo(), requireApiKey: false })\n`,
    )
    await using outServed = await serve([file, '--tunnel', 'local'])
    const out = outServed.out
    expect(out).toMatch(/^ {2}header: \(none needed\)$/m)
    const url = /^ {2}url: +(\S+)$/m.exec(out)![1]!
    expect(await rollout(url, {})).toBe(200)
  })
})
