/**
 * `app.headers` is exactly what a caller of `app.url` needs, in every mode: a rollout sent with
 * only those headers (plus a signed container token where the app requires one, which no caller
 * is handed) answers 200, and the same call without any one of them is refused. Real servers on
 * loopback: the task app, a relay, an auth proxy in front of a preconfigured URL, and the
 * cloudflared test double (the real binary cannot run here) for a quick tunnel.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { join } from 'node:path'
import { createTaskApp, generateContainerKeyPair, signContainerToken } from '@taskapp/task-server'
import { createRelayServer } from '@taskapp/tunnel-synth/relay'
import { listenLoopback } from '@taskapp/test-utils'
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { callerHeaders } from './caller-headers'
import { InProcessTaskApp } from './in-process-task-app'
import type { InProcessTaskAppOptions } from './option-types'
import { clearRelayEnv, plainApp, testConfig, watchQuickTunnel } from './test-helpers'

const CLOUDFLARED_DOUBLE = join(
  import.meta.dirname,
  '../../tunnel-cloudflare/src/fixtures/cloudflared-double.cjs',
)
const RELAY_KEY = 'relay-key-for-header-tests'

/** POST /rollout over its own connection; resolves the status and the parsed body. */
function rollout(
  baseUrl: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: unknown }> {
  const body = JSON.stringify({ trace_correlation_id: 'h-1', env: { seed: 1 }, policy: { config: {} } })
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${baseUrl}/rollout`,
      { method: 'POST', agent: false, headers: { ...headers, 'content-type': 'application/json' } },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (text += chunk))
        res.on('end', () => {
          let parsed: unknown = text
          try {
            parsed = JSON.parse(text)
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** The same headers without `name`. */
function without(headers: Readonly<Record<string, string>>, name: string): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([key]) => key !== name))
}

async function start(options: InProcessTaskAppOptions): Promise<InProcessTaskApp> {
  const app = await InProcessTaskApp.start({ port: 0, handleSignals: false, ...options })
  onTestFinished(() => app.stop())
  return app
}

/**
 * Expects a rollout with exactly `app.headers` (+ `extra`) to pass, and one without each header to
 * be refused with the status `refusals` names for it.
 */
async function expectExactlyEnough(
  app: InProcessTaskApp,
  refusals: Record<string, number>,
  extra: Record<string, string> = {},
  baseUrl = app.url,
): Promise<void> {
  expect(Object.keys(app.headers).sort()).toEqual(Object.keys(refusals).sort())
  const ok = await rollout(baseUrl, { ...app.headers, ...extra })
  expect(ok, JSON.stringify(ok.body)).toMatchObject({ status: 200, body: { trace_correlation_id: 'h-1' } })
  for (const [name, status] of Object.entries(refusals)) {
    const refused = await rollout(baseUrl, { ...without(app.headers, name), ...extra })
    expect(refused.status, `without ${name}`).toBe(status)
  }
}

async function containerKeys() {
  const pair = generateContainerKeyPair({ kid: 'k1' })
  const token = await signContainerToken({
    privateKey: pair.privateKey,
    kid: 'k1',
    scopes: ['rollout'],
    ttlMs: 60_000,
  })
  return { pair, tokenHeader: { 'X-Synth-Container-Authorization': `Bearer ${token}` } }
}

beforeEach(() => {
  clearRelayEnv()
  vi.stubEnv('ENVIRONMENT_API_KEY', undefined)
  vi.stubEnv('ENVIRONMENT_API_KEY_ALIASES', undefined)
})
afterEach(() => {
  vi.unstubAllEnvs()
})

describe("mode 'local': X-API-Key when the app wants a key", () => {
  it('a generated key: headers carry it, and without it the app answers 400', async () => {
    const app = await start({ config: testConfig(), tunnel: { mode: 'local' } })
    expect(app.apiKeyGenerated).toBe(true)
    expect(app.headers).toEqual({ 'X-API-Key': app.apiKey })
    await expectExactlyEnough(app, { 'X-API-Key': 400 })
  })

  it('a given key (option, env, or the config): headers carry it; apiKeyGenerated is false', async () => {
    const byOption = await start({ config: testConfig(), apiKey: 'given-key', tunnel: { mode: 'local' } })
    expect(byOption.headers).toEqual({ 'X-API-Key': 'given-key' })
    expect(byOption.apiKeyGenerated).toBe(false)
    await expectExactlyEnough(byOption, { 'X-API-Key': 400 })
    const byConfig = await start({
      config: testConfig({ apiKeys: ['config-key'] }),
      tunnel: { mode: 'local' },
    })
    expect(byConfig.headers).toEqual({ 'X-API-Key': 'config-key' })
    expect(byConfig.apiKeyGenerated).toBe(false)
    vi.stubEnv('ENVIRONMENT_API_KEY', 'env-key')
    const byEnv = await start({ config: testConfig(), tunnel: { mode: 'local' } })
    expect(byEnv.headers).toEqual({ 'X-API-Key': 'env-key' })
    await expectExactlyEnough(byEnv, { 'X-API-Key': 400 })
  })

  it('requireApiKey: false: no header, and a caller with none passes', async () => {
    const app = await start({ config: testConfig({ requireApiKey: false }), tunnel: { mode: 'local' } })
    expect(app.headers).toEqual({})
    await expectExactlyEnough(app, {})
  })

  it('token-only (container keys, no key anywhere): no header; a signed token is what gets in', async () => {
    const { pair, tokenHeader } = await containerKeys()
    const app = await start({
      config: testConfig({ containerAuth: { trustedKeys: pair.trusted, mode: 'required' } }),
      tunnel: { mode: 'local' },
    })
    expect(app.headers).toEqual({})
    await expectExactlyEnough(app, {}, tokenHeader)
    expect((await rollout(app.url, { ...app.headers })).status).toBe(401)
  })

  it('a ready-made app with the apiKey option: headers carry that key; without an option, none', async () => {
    const ready = createTaskApp(testConfig({ apiKeys: ['ready-key'] }))
    const app = await start({ app: ready, apiKey: 'ready-key', tunnel: { mode: 'local' } })
    expect(app.headers).toEqual({ 'X-API-Key': 'ready-key' })
    await expectExactlyEnough(app, { 'X-API-Key': 400 })
    const open = await start({ app: plainApp(), tunnel: { mode: 'local' } })
    expect(open.headers).toEqual({})
    expect(open.apiKeyGenerated).toBe(false)
  })
})

describe("mode 'synthtunnel' through a real relay on loopback", () => {
  async function relayTunnel() {
    const relay = await createRelayServer({ apiKeys: [RELAY_KEY], port: 0, host: '127.0.0.1' })
    onTestFinished(() => relay.close())
    return { mode: 'synthtunnel', relayUrl: relay.url, relayApiKey: RELAY_KEY } as const
  }

  it('older generation (the agent adds the key): the worker token alone, no X-API-Key', async () => {
    const app = await start({ config: testConfig(), tunnel: await relayTunnel() })
    expect(app.headers).toEqual({ 'X-SynthTunnel-Worker-Token': app.taskAppWorkerToken })
    await expectExactlyEnough(app, { 'X-SynthTunnel-Worker-Token': 401 })
  })

  it('token-only: the worker token alone; with the backend-signed token it passes', async () => {
    const { pair, tokenHeader } = await containerKeys()
    const app = await start({
      config: testConfig({ containerAuth: { trustedKeys: pair.trusted, mode: 'required' } }),
      tunnel: await relayTunnel(),
    })
    expect(app.headers).toEqual({ 'X-SynthTunnel-Worker-Token': app.taskAppWorkerToken })
    await expectExactlyEnough(app, { 'X-SynthTunnel-Worker-Token': 401 }, tokenHeader)
    // The worker token is not enough by itself: the app needs the signed token.
    expect((await rollout(app.url, { ...app.headers })).status).toBe(401)
  })

  it('both generations (key and container keys): worker token + X-API-Key, so a caller without a token passes', async () => {
    const { pair, tokenHeader } = await containerKeys()
    const app = await start({
      config: testConfig({ containerAuth: { trustedKeys: pair.trusted, mode: 'required' } }),
      apiKey: 'both-key',
      tunnel: await relayTunnel(),
    })
    expect(app.headers).toEqual({
      'X-SynthTunnel-Worker-Token': app.taskAppWorkerToken,
      'X-API-Key': 'both-key',
    })
    await expectExactlyEnough(app, { 'X-SynthTunnel-Worker-Token': 401, 'X-API-Key': 401 })
    // The backend's signed token is the other way in.
    const signed = await rollout(app.url, { ...without(app.headers, 'X-API-Key'), ...tokenHeader })
    expect(signed.status).toBe(200)
  })
})

describe("mode 'preconfigured' behind an auth proxy on loopback", () => {
  it('the proxy header and X-API-Key; each one missing is refused by its owner', async () => {
    let target = ''
    const proxy = await listenLoopback((req: IncomingMessage, res) => {
      if (req.headers['x-proxy-token'] !== 'proxy-secret') {
        res.writeHead(401).end('proxy: token missing')
        return
      }
      const upstream = httpRequest(
        `${target}${req.url}`,
        { method: req.method, headers: req.headers, agent: false },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        },
      )
      upstream.on('error', () => res.writeHead(502).end())
      req.pipe(upstream)
    })
    onTestFinished(() => proxy.close())
    const app = await start({
      config: testConfig(),
      apiKey: 'behind-proxy-key',
      tunnel: {
        mode: 'preconfigured',
        url: proxy.url,
        authHeader: 'X-Proxy-Token',
        authToken: 'proxy-secret',
      },
    })
    target = app.localUrl
    expect(app.headers).toEqual({ 'X-Proxy-Token': 'proxy-secret', 'X-API-Key': 'behind-proxy-key' })
    await expectExactlyEnough(app, { 'X-Proxy-Token': 401, 'X-API-Key': 400 })
  })
})

describe("mode 'quick' through the cloudflared test double", () => {
  it('X-API-Key (cloudflared adds nothing); the double really forwards', async () => {
    const quick = watchQuickTunnel()
    const app = await start({
      config: testConfig(),
      tunnel: { mode: 'quick', cloudflaredPath: CLOUDFLARED_DOUBLE },
    })
    expect(app.headers).toEqual({ 'X-API-Key': app.apiKey })
    // The trycloudflare.com URL is not reachable from here; the double exposes its forwarder.
    const forward = (await (await fetch(`${quick.opened()!.metricsUrl}/taskapp-double/forward`)).json()) as {
      url: string
    }
    await expectExactlyEnough(app, { 'X-API-Key': 400 }, {}, forward.url)
  })
})

describe('callerHeaders', () => {
  it('app.headers is {} before start', () => {
    const app = new InProcessTaskApp({
      config: testConfig(),
      port: 0,
      handleSignals: false,
      tunnel: { mode: 'local' },
    })
    expect(app.headers).toEqual({})
    expect(app.apiKeyGenerated).toBe(false)
  })

  it('a tunnel header of the same name wins over the key (any case); a custom tunnel gets the key', () => {
    const facts = { apiKey: 'k', containerAuth: false, callerNeedsKey: true }
    expect(callerHeaders('preconfigured', facts, { 'x-api-key': 'proxy' })).toEqual({ 'x-api-key': 'proxy' })
    expect(callerHeaders('custom', facts, { A: '1' })).toEqual({ A: '1', 'X-API-Key': 'k' })
    expect(callerHeaders('synthtunnel', facts, { W: 't' })).toEqual({ W: 't' })
    expect(callerHeaders('synthtunnel', { ...facts, containerAuth: true }, { W: 't' })).toEqual({
      W: 't',
      'X-API-Key': 'k',
    })
  })
})
