/**
 * `taskapp check` names what actually failed, against real servers on loopback: a task app (API
 * keys, container tokens), a relay in front of an `InProcessTaskApp`, a closed port.
 */
import { InProcessTaskApp } from '@taskapp/in-process'
import { createTaskApp, generateContainerKeyPair } from '@taskapp/task-server'
import { createRelayServer } from '@taskapp/tunnel-synth/relay'
import { listenLoopback } from '@taskapp/test-utils'
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { captureIo, FakeProcess } from '../test-helpers'
import { buildConfig } from '../fixtures/echo-app'
import type { CheckCommand } from './args'
import { runCheckProbe, type CheckReport } from './check'
import { diagnoseAnswer, sentCredentials } from './check-diagnosis'
import { runCli } from './main'

function probe(url: string, more: Partial<CheckCommand> = {}): Promise<CheckReport> {
  return runCheckProbe({
    command: 'check',
    url,
    headers: {},
    timeoutMs: 5000,
    wait: false,
    json: true,
    ...more,
  })
}

/** A task app on 127.0.0.1:0, closed when the test ends. */
async function servedApp(config: Partial<ReturnType<typeof buildConfig>>): Promise<string> {
  const app = createTaskApp({ ...buildConfig(), ...config })
  const served = await listenLoopback(app)
  onTestFinished(async () => {
    await served.close()
    await app.lifecycle.close()
  })
  await app.lifecycle.ready()
  return served.url
}

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<{ url: string; host: string }> {
  const server = await listenLoopback((_req, res) => res.end())
  const { url } = server
  await server.close()
  return { url, host: new URL(url).host }
}

beforeEach(() => {
  vi.stubEnv('ENVIRONMENT_API_KEY', undefined)
  vi.stubEnv('ENVIRONMENT_API_KEY_ALIASES', undefined)
  vi.stubEnv('DEV_ENVIRONMENT_API_KEY', undefined)
  vi.stubEnv('SYNTH_CONTAINER_TRUSTED_PUBKEYS', undefined)
})
afterEach(() => {
  vi.unstubAllEnvs()
})

describe('taskapp check against a task app: which credential, missing or refused', () => {
  it('no key sent → api_key_missing (not "refused"); a wrong key → api_key_refused; the right one → healthy', async () => {
    const url = await servedApp({ apiKeys: ['right-key'] })
    const none = await probe(url)
    expect(none).toMatchObject({ healthy: false, status: 400, reason: 'api_key_missing' })
    expect(none.error).toMatch(
      /^no API key sent, and the task app requires one \(HTTP 400\); pass it with --api-key-file/,
    )
    const wrong = await probe(url, { apiKey: 'wrong-key' })
    expect(wrong).toMatchObject({ healthy: false, status: 400, reason: 'api_key_refused' })
    expect(wrong.error).toBe("the task app refused the API key (HTTP 400): it is not one of the app's keys")
    // A key given as -H counts as sent.
    expect(await probe(url, { headers: { 'X-API-Key': 'wrong-key' } })).toMatchObject({
      reason: 'api_key_refused',
    })
    expect(await probe(url, { apiKey: 'right-key' })).toMatchObject({
      healthy: true,
      infoStatus: 200,
      reason: undefined,
    })
  })

  it('token-only app: /health is open, /info without a token → credential_missing; a bad token → credential_refused', async () => {
    const pair = generateContainerKeyPair({ kid: 'k1' })
    const url = await servedApp({ containerAuth: { trustedKeys: pair.trusted, mode: 'required' } })
    const none = await probe(url)
    expect(none).toMatchObject({ healthy: true, infoStatus: 401, reason: 'credential_missing' })
    expect(none.error).toMatch(/^no credential sent, and the task app requires a signed container token/)
    const bad = await probe(url, { headers: { 'X-Synth-Container-Authorization': 'Bearer not-a-token' } })
    expect(bad).toMatchObject({ healthy: true, infoStatus: 401, reason: 'credential_refused' })
    expect(bad.error).toMatch(/^the task app refused the credential sent \(HTTP 401\): /)
  })

  it('an app with no key configured → server_has_no_key; a plain server without /health → not_found', async () => {
    const url = await servedApp({})
    expect(await probe(url, { apiKey: 'any' })).toMatchObject({
      status: 503,
      reason: 'server_has_no_key',
      error: 'the task app has no API key configured (HTTP 503): set ENVIRONMENT_API_KEY where it runs',
    })
    await using plain = await listenLoopback((_req, res) => res.writeHead(404).end('nope'))
    expect(await probe(plain.url)).toMatchObject({
      reason: 'not_found',
      error: 'the app has no /health route (HTTP 404)',
    })
  })
})

describe('taskapp check through a relay: the worker token, missing or wrong', () => {
  async function relayed() {
    const relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
    onTestFinished(() => relay.close())
    const app = await InProcessTaskApp.start({
      config: buildConfig(),
      apiKey: 'relayed-key',
      port: 0,
      handleSignals: false,
      tunnel: { mode: 'synthtunnel', relayUrl: relay.url, relayApiKey: relay.apiKey },
    })
    onTestFinished(() => app.stop())
    return { relay, app }
  }

  it('none → worker_token_missing, even with --api-key (sent as a bearer); a wrong one → worker_token_invalid', async () => {
    const { relay, app } = await relayed()
    const none = await probe(app.url)
    expect(none).toMatchObject({ healthy: false, status: 401, reason: 'worker_token_missing' })
    expect(none.error).toMatch(
      /^the relay refused: no worker token sent \(HTTP 401 TUNNEL_AUTH_REQUIRED\); send the X-SynthTunnel-Worker-Token/,
    )
    expect(none.error).not.toMatch(/API key/)
    expect(await probe(app.url, { apiKey: 'relayed-key' })).toMatchObject({ reason: 'worker_token_missing' })
    const wrong = await probe(app.url, { headers: { 'X-SynthTunnel-Worker-Token': 'wt_wrong' } })
    expect(wrong).toMatchObject({ healthy: false, status: 401, reason: 'worker_token_invalid' })
    expect(wrong.error).toMatch(/^the relay refused the worker token: it is not this tunnel's/)
    // app.headers alone is enough: the agent adds the key.
    expect(await probe(app.url, { headers: { ...app.headers } })).toMatchObject({
      healthy: true,
      infoStatus: 200,
    })
    // Another relay answer is passed on with its code and detail.
    const gone = await probe(`${relay.url}/s/rt_unknown`, { headers: { ...app.headers } })
    expect(gone).toMatchObject({ status: 404, reason: 'relay_error' })
    expect(gone.error).toMatch(
      /^the relay answered HTTP 404 TUNNEL_NOT_FOUND: No tunnel has this route token/,
    )
  })

  it('--wait: a missing worker token is reported at once, not after the deadline', async () => {
    const { app } = await relayed()
    const report = await probe(app.url, { wait: true, timeoutMs: 20_000 })
    expect(report).toMatchObject({ healthy: false, reason: 'worker_token_missing' })
    expect(report.elapsedMs).toBeLessThan(20_000)
  })
})

describe('taskapp check on a closed port', () => {
  it('once: nothing is listening', async () => {
    const { url, host } = await closedPort()
    expect(await probe(url)).toMatchObject({
      healthy: false,
      status: undefined,
      reason: 'not_listening',
      error: `nothing is listening at ${host} (connection refused)`,
    })
  })

  it('--wait: "nothing is listening", not "the app has no /health route"', async () => {
    const { url, host } = await closedPort()
    const io = captureIo()
    const status = await runCli(['check', url, '--wait', '--timeout', '300'], io, {}, new FakeProcess())
    expect(status).toBe(1)
    expect(io.out()).toBe(
      `✗ unhealthy  ${url}/health  not healthy within --timeout 300 ms: nothing is listening at ${host} (connection refused)\n`,
    )
  })
})

describe('diagnoseAnswer', () => {
  it('reads the code from a body cut short, and says "got none although one was sent" when a key was dropped', () => {
    const cut =
      '{"detail":{"error":{"code":"unauthorised","message":"API key missing: send it in X-API-Key, X-API-K'
    const sent = sentCredentials({ apiKey: 'k', headers: {} })
    expect(diagnoseAnswer('/health', 400, cut, sent).reason).toBe('api_key_refused')
    const whole = '{"detail":{"error":{"code":"unauthorised","message":"API key missing: send it."}}}'
    expect(diagnoseAnswer('/health', 400, whole, sent)).toMatchObject({
      reason: 'api_key_missing',
      message: expect.stringMatching(/although one was sent/),
    })
    expect(diagnoseAnswer('/health', 503, '{"detail":{"error":{"code":"not_ready"}}}', sent).message).toBe(
      '/health answered HTTP 503 (not_ready)',
    )
  })
})
