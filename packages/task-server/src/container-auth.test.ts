/**
 * Container tokens in the request path, with real signed tokens over real loopback sockets:
 * route scopes, 401 `auth_missing` / `auth_invalid`, the modes, both generations at once, the
 * environment fallbacks, and API-key-only apps unchanged.
 */
import { describe, expect, onTestFinished, test } from 'vitest'
import { listenLoopback } from '@taskapp/test-utils'
import { isLoopbackAddress } from './auth'
import { generateContainerKeyPair, signContainerToken } from './container-auth/sign'
import { createTaskApp, type TaskAppConfig } from './index'
import { inject, KEY, rolloutBody, testConfig } from './test-helpers'

const pair = generateContainerKeyPair({ kid: 'k1' })
const other = generateContainerKeyPair({ kid: 'k1' })
const ENV = ['SYNTH_CONTAINER_TRUSTED_PUBKEYS', 'SYNTH_CONTAINER_AUTH_MODE', 'SYNTH_CONTAINER_AUTH_ISSUER']

/** Clears the container env vars for one test (setting `values`) and restores them afterwards. */
function withEnv(values: Record<string, string> = {}): void {
  const saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]))
  onTestFinished(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })
  for (const k of ENV) delete process.env[k]
  Object.assign(process.env, values)
}

function token(scopes: string[], options: { ttlMs?: number; now?: number; issuer?: string } = {}) {
  return signContainerToken({ privateKey: pair.privateKey, kid: 'k1', scopes, ttlMs: 300_000, ...options })
}

/** A ready app on 127.0.0.1 port 0; `call(path, init)` fetches it. Closed after the test. */
async function serve(overrides: Partial<TaskAppConfig>) {
  const app = createTaskApp(testConfig(overrides))
  await app.lifecycle.ready()
  const server = await listenLoopback(app)
  onTestFinished(async () => {
    await server.close()
    await app.lifecycle.close()
  })
  return async (path: string, headers: Record<string, string> = {}, method?: string) => {
    const isRollout = path.startsWith('/rollout') && !path.startsWith('/rollouts')
    const res = await fetch(`${server.url}${path}`, {
      method: method ?? (isRollout || path === '/done' ? 'POST' : 'GET'),
      headers: isRollout ? { 'content-type': 'application/json', ...headers } : headers,
      body: isRollout ? JSON.stringify(rolloutBody()) : undefined,
    })
    const text = await res.text()
    return {
      status: res.status,
      headers: res.headers,
      body: text === '' ? undefined : JSON.parse(text),
    }
  }
}

const bearer = async (scopes: string[], options?: Parameters<typeof token>[1]) => ({
  'x-synth-container-authorization': `Bearer ${await token(scopes, options)}`,
})

/** Container keys only (the newer generation). */
const tokensOnly = { apiKeys: [] as string[], containerAuth: { trustedKeys: pair.trusted } }

describe('trusted keys configured (newer generation)', () => {
  test.each([
    ['POST /rollout', '/rollout', 'rollout'],
    ['POST /rollout?mode=async', '/rollout?mode=async', 'rollout'],
    ['GET /task_info', '/task_info', 'task_info'],
    ['GET /task_info?seed=1', '/task_info?seed=1', 'task_info'],
    ['GET /info', '/info', 'task_info'],
  ])(
    '%s passes with a token for its scope, 401 auth_invalid with the other scope',
    async (_n, path, scope) => {
      withEnv()
      const call = await serve(tokensOnly)
      const ok = await call(path, await bearer([scope]))
      expect(ok.status, JSON.stringify(ok.body)).toBe(path.includes('async') ? 202 : 200)
      const wrong = await call(path, await bearer([scope === 'rollout' ? 'task_info' : 'rollout']))
      expect(wrong.status).toBe(401)
      expect(wrong.headers.get('www-authenticate')).toBe('Bearer')
      expect(wrong.body.detail.error).toMatchObject({ code: 'auth_invalid' })
      expect(wrong.body.detail.error.message).toMatch(`does not grant the "${scope}" scope`)
    },
  )

  test('/rollouts/:id needs the rollout scope', async () => {
    withEnv()
    const call = await serve(tokensOnly)
    const started = await call('/rollout?mode=async', await bearer(['rollout']))
    expect(started.status).toBe(202)
    const path = `/rollouts/${started.body.id as string}`
    expect((await call(path, await bearer(['rollout']))).status).toBe(200)
    const wrong = await call(path, await bearer(['task_info']))
    expect([wrong.status, wrong.body.detail.error.code]).toEqual([401, 'auth_invalid'])
    expect((await call(path)).body.detail.error.code).toBe('auth_missing')
  })

  test('/done (no scope) passes with any valid token', async () => {
    withEnv()
    const call = await serve(tokensOnly)
    expect((await call('/done', await bearer(['task_info']))).status).toBe(200)
    expect((await call('/done')).status).toBe(401)
  })

  test('no header and no key: 401 auth_missing with the envelope', async () => {
    withEnv()
    const call = await serve(tokensOnly)
    for (const path of ['/rollout', '/task_info', '/info']) {
      const res = await call(path)
      expect(res.status).toBe(401)
      expect(res.body).toEqual({
        detail: {
          error: {
            code: 'auth_missing',
            message: 'Authentication missing: send X-Synth-Container-Authorization: Bearer <token>.',
          },
        },
      })
    }
  })

  test.each([
    ['expired', () => bearer(['rollout'], { now: Date.now() - 3_600_000 }), /Token has expired/],
    [
      'signed by an untrusted key',
      async () => ({
        'x-synth-container-authorization': `Bearer ${await signContainerToken({ privateKey: other.privateKey, kid: 'k1', scopes: ['rollout'], ttlMs: 300_000 })}`,
      }),
      /signature/,
    ],
    ['another issuer', () => bearer(['rollout'], { issuer: 'someone-else' }), /"iss"/],
    ['not a PASETO', async () => ({ 'x-synth-container-authorization': 'Bearer abc' }), /not a PASETO/],
    ['an API key that is not configured', async () => ({ 'x-api-key': KEY }), /API keys are not accepted/],
  ])('%s: 401 auth_invalid', async (_n, headers, message) => {
    withEnv()
    const call = await serve(tokensOnly)
    const res = await call('/rollout', await headers())
    expect([res.status, res.body.detail.error.code]).toEqual([401, 'auth_invalid'])
    expect(res.body.detail.error.message).toMatch(message)
  })

  test('/ and /health are open; /health hides the API-key prefix', async () => {
    withEnv()
    const call = await serve({ containerAuth: { trustedKeys: pair.trusted } })
    expect(await call('/')).toMatchObject({ status: 200, body: { status: 'ok', service: 'banking77' } })
    expect(await call('/health')).toMatchObject({
      status: 200,
      body: { healthy: true, auth: { required: true, expected_prefix: '<hidden>' } },
    })
  })

  test('X-Forwarded-For is never trusted', async () => {
    withEnv()
    const call = await serve({
      ...tokensOnly,
      containerAuth: { trustedKeys: pair.trusted, mode: 'required' },
    })
    expect((await call('/rollout', { 'x-forwarded-for': '127.0.0.1' })).status).toBe(401)
  })
})

describe('modes', () => {
  test('optional_local: an unsigned call from a loopback socket passes; a bad token still does not', async () => {
    withEnv()
    const call = await serve({
      ...tokensOnly,
      containerAuth: { trustedKeys: pair.trusted, mode: 'optional_local' },
    })
    expect((await call('/rollout')).status).toBe(200)
    expect((await call('/task_info')).status).toBe(200)
    const bad = await call('/rollout', await bearer(['task_info']))
    expect([bad.status, bad.body.detail.error.code]).toEqual([401, 'auth_invalid'])
    // Routes without a scope are not opened by optional_local.
    expect((await call('/done')).status).toBe(401)
    // A call relayed by the SynthTunnel agent (marked x-synth-relay) is not local, whatever its socket.
    const relayed = await call('/rollout', { 'x-synth-relay': '1' })
    expect([relayed.status, relayed.body.detail.error.code]).toEqual([401, 'auth_missing'])
  })

  test('optional_local: a peer that is not loopback gets 401 auth_missing', async () => {
    withEnv()
    // `inject` drives the app over an in-memory socket, which has no remote address.
    const app = createTaskApp(
      testConfig({ ...tokensOnly, containerAuth: { trustedKeys: pair.trusted, mode: 'optional_local' } }),
    )
    onTestFinished(() => app.lifecycle.close())
    await app.lifecycle.ready()
    const res = await inject(app, {
      method: 'POST',
      url: '/rollout',
      body: rolloutBody(),
      headers: { 'x-forwarded-for': '127.0.0.1' },
    })
    expect([res.status, res.json<{ detail: { error: { code: string } } }>().detail.error.code]).toEqual([
      401,
      'auth_missing',
    ])
  })

  test.each([
    ['127.0.0.1', true],
    ['127.5.6.7', true],
    ['::1', true],
    ['::ffff:127.0.0.1', true],
    ['10.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['128.0.0.1', false],
    [undefined, false],
  ])('isLoopbackAddress(%s) is %s', (address, expected) => {
    expect(isLoopbackAddress(address)).toBe(expected)
  })

  test('disabled: API-key auth only, exactly as today (tokens ignored, 400 unauthorised)', async () => {
    withEnv()
    const call = await serve({ containerAuth: { trustedKeys: pair.trusted, mode: 'disabled' } })
    expect((await call('/rollout', { 'x-api-key': KEY })).status).toBe(200)
    const res = await call('/rollout', await bearer(['rollout']))
    expect([res.status, res.body.detail.error.code]).toEqual([400, 'unauthorised'])
    expect((await call('/health')).status).toBe(400)
  })
})

describe('both generations at once', () => {
  test('a request passes with either a valid token or a valid API key', async () => {
    withEnv()
    const call = await serve({ containerAuth: { trustedKeys: pair.trusted } })
    expect((await call('/rollout', await bearer(['rollout']))).status).toBe(200)
    expect((await call('/rollout', { 'x-api-key': KEY })).status).toBe(200)
    expect((await call('/task_info', { authorization: `Bearer ${KEY}` })).status).toBe(200)
    // A valid key wins over a bad token, and a valid token over a wrong key.
    expect((await call('/rollout', { 'x-api-key': KEY, ...(await bearer(['task_info'])) })).status).toBe(200)
    expect((await call('/rollout', { 'x-api-key': 'wrong', ...(await bearer(['rollout'])) })).status).toBe(
      200,
    )
  })

  test('neither: auth_missing without headers, auth_invalid with a wrong key', async () => {
    withEnv()
    const call = await serve({ containerAuth: { trustedKeys: pair.trusted } })
    const missing = await call('/rollout')
    expect([missing.status, missing.body.detail.error.code]).toEqual([401, 'auth_missing'])
    expect(missing.body.detail.error.message).toMatch(/or an API key/)
    const wrong = await call('/rollout', { 'x-api-key': 'wrong-key' })
    expect([wrong.status, wrong.body.detail.error.code]).toEqual([401, 'auth_invalid'])
  })
})

describe('configuration', () => {
  test('env only: SYNTH_CONTAINER_TRUSTED_PUBKEYS, _AUTH_MODE and _AUTH_ISSUER are read at createTaskApp', async () => {
    withEnv({
      SYNTH_CONTAINER_TRUSTED_PUBKEYS: pair.trusted,
      SYNTH_CONTAINER_AUTH_ISSUER: 'my-backend',
      SYNTH_CONTAINER_AUTH_MODE: 'required',
    })
    const call = await serve({ apiKeys: [] })
    // Read once: changing the environment afterwards changes nothing.
    delete process.env.SYNTH_CONTAINER_TRUSTED_PUBKEYS
    expect((await call('/rollout', await bearer(['rollout'], { issuer: 'my-backend' }))).status).toBe(200)
    expect((await call('/rollout', await bearer(['rollout']))).body.detail.error.message).toMatch(/"iss"/)
    expect((await call('/rollout')).body.detail.error.code).toBe('auth_missing')
  })

  test('env mode optional_local applies', async () => {
    withEnv({ SYNTH_CONTAINER_TRUSTED_PUBKEYS: pair.trusted, SYNTH_CONTAINER_AUTH_MODE: 'optional_local' })
    const call = await serve({ apiKeys: [] })
    expect((await call('/rollout')).status).toBe(200)
  })

  test('the config wins over the environment', async () => {
    withEnv({ SYNTH_CONTAINER_TRUSTED_PUBKEYS: other.trusted, SYNTH_CONTAINER_AUTH_MODE: 'disabled' })
    const call = await serve({
      ...tokensOnly,
      containerAuth: { trustedKeys: pair.trusted, mode: 'required' },
    })
    expect((await call('/rollout', await bearer(['rollout']))).status).toBe(200)
  })

  test('blank SYNTH_CONTAINER_TRUSTED_PUBKEYS counts as unset (API keys only)', async () => {
    withEnv({ SYNTH_CONTAINER_TRUSTED_PUBKEYS: '  ' })
    const call = await serve({})
    expect((await call('/rollout')).body.detail.error.code).toBe('unauthorised')
  })

  test.each([
    [
      { containerAuth: { mode: 'sometimes' } },
      'TASKAPP_ERR_INVALID_CONFIG',
      /containerAuth.mode must be one of/,
    ],
    [{ containerAuth: { trustedKeys: 42 } }, 'TASKAPP_ERR_INVALID_CONFIG', /containerAuth.trustedKeys/],
    [{ containerAuth: { issuer: '' } }, 'TASKAPP_ERR_INVALID_CONFIG', /containerAuth.issuer/],
    [{ containerAuth: { clockToleranceMs: -1 } }, 'TASKAPP_ERR_INVALID_CONFIG', /clockToleranceMs/],
    [{ containerAuth: 'yes' }, 'TASKAPP_ERR_INVALID_CONFIG', /containerAuth must be an object/],
    [{ containerAuth: { mode: 'required' } }, 'TASKAPP_ERR_INVALID_CONFIG', /no trusted container key/],
    [{ containerAuth: { trustedKeys: 'k1:not-a-key' } }, 'TASKAPP_ERR_INVALID_CONTAINER_KEY', /.+/],
    [
      { containerAuth: { trustedKeys: [] } },
      'TASKAPP_ERR_INVALID_CONTAINER_KEY',
      /No trusted container keys/,
    ],
  ])('bad config %j: %s', (overrides, code, message) => {
    withEnv()
    expect(() => createTaskApp(testConfig(overrides as Partial<TaskAppConfig>))).toThrow(
      expect.objectContaining({ code, message: expect.stringMatching(message) }),
    )
  })

  test.each([
    [{ SYNTH_CONTAINER_TRUSTED_PUBKEYS: 'k1:nope' }, 'TASKAPP_ERR_INVALID_CONTAINER_KEY'],
    [
      { SYNTH_CONTAINER_TRUSTED_PUBKEYS: pair.trusted, SYNTH_CONTAINER_AUTH_MODE: 'maybe' },
      'TASKAPP_ERR_INVALID_CONFIG',
    ],
  ])('bad environment %j: %s', (env, code) => {
    withEnv(env)
    expect(() => createTaskApp(testConfig())).toThrow(expect.objectContaining({ code }))
  })

  test('SYNTH_CONTAINER_AUTH_MODE without trusted keys is ignored', async () => {
    withEnv({ SYNTH_CONTAINER_AUTH_MODE: 'maybe' })
    const call = await serve({})
    expect((await call('/rollout', { 'x-api-key': KEY })).status).toBe(200)
  })
})

describe('only API keys configured: unchanged', () => {
  test('400 unauthorised, /health needs the key, tokens are ignored', async () => {
    withEnv()
    const call = await serve({})
    const res = await call('/rollout', await bearer(['rollout']))
    expect(res.status).toBe(400)
    expect(res.body).toEqual({
      detail: {
        error: {
          code: 'unauthorised',
          message: 'API key missing: send it in X-API-Key, X-API-Keys or Authorization: Bearer.',
        },
      },
    })
    expect((await call('/health')).status).toBe(400)
    expect((await call('/rollout', { 'x-api-key': KEY })).status).toBe(200)
  })
})
