import { describe, expect, onTestFinished, test } from 'vitest'
import { candidateKeys, createKeySource, isAuthorized, keyPrefix, matchedKey } from './auth'
import { keyOwnerId } from './owner'
import { createTaskApp } from './index'
import type { TaskAppConfig } from './index'
import { recordingLogger } from '@taskapp/test-utils'
import { KEY, inject, testConfig } from './test-helpers'

const ENV_KEYS = [
  'ENVIRONMENT_API_KEY',
  'ENVIRONMENT_API_KEY_ALIASES',
  'DEV_ENVIRONMENT_API_KEY',
  'dev_environment_api_key',
]

/** Sets env vars for one test and restores them afterwards. */
function withEnv(values: Record<string, string | undefined>): void {
  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]))
  onTestFinished(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })
  for (const k of ENV_KEYS) delete process.env[k]
  for (const [k, v] of Object.entries(values)) if (v !== undefined) process.env[k] = v
}

function makeApp(overrides: Partial<TaskAppConfig> = {}) {
  const app = createTaskApp(testConfig(overrides))
  onTestFinished(() => app.lifecycle.close())
  return app
}

describe('accepted key forms', () => {
  test.each([
    ['X-API-Key', { 'x-api-key': KEY }],
    ['X-API-Keys (comma list, key last)', { 'x-api-keys': `other-1, other-2,${KEY}` }],
    ['Authorization: Bearer', { authorization: `Bearer ${KEY}` }],
    ['Authorization: bearer (case-insensitive)', { authorization: `bearer ${KEY}` }],
    ['X-API-Key with a Bearer prefix', { 'x-api-key': `Bearer ${KEY}` }],
    ['a wrong key beside the right one', { 'x-api-key': 'wrong-key', authorization: `Bearer ${KEY}` }],
  ])('%s', async (_name, headers) => {
    const res = await inject(makeApp(), { url: '/health', headers })
    expect(res.status).toBe(200)
  })

  test.each([
    ['the primary key', 'primary-key-1'],
    ['the first alias', 'alias-key-1'],
    ['the second alias', 'alias-key-2'],
  ])('from the environment: %s', async (_name, key) => {
    withEnv({ ENVIRONMENT_API_KEY: 'primary-key-1', ENVIRONMENT_API_KEY_ALIASES: 'alias-key-1, alias-key-2' })
    const app = makeApp({ apiKeys: undefined })
    expect((await inject(app, { url: '/health', headers: { 'x-api-key': key } })).status).toBe(200)
  })

  test('DEV_ENVIRONMENT_API_KEY fills in for an empty ENVIRONMENT_API_KEY', async () => {
    withEnv({ ENVIRONMENT_API_KEY: '', DEV_ENVIRONMENT_API_KEY: 'dev-key-123' })
    const app = makeApp({ apiKeys: undefined })
    expect((await inject(app, { url: '/health', headers: { 'x-api-key': 'dev-key-123' } })).status).toBe(200)
  })

  test('the environment is read at request time (a key exported after creation works)', async () => {
    withEnv({})
    const app = makeApp({ apiKeys: undefined })
    expect((await inject(app, { url: '/health', headers: { 'x-api-key': 'late-key-1' } })).status).toBe(503)
    process.env.ENVIRONMENT_API_KEY = 'late-key-1'
    expect((await inject(app, { url: '/health', headers: { 'x-api-key': 'late-key-1' } })).status).toBe(200)
  })

  test('apiKeys wins over the environment', async () => {
    withEnv({ ENVIRONMENT_API_KEY: 'env-key-1' })
    const app = makeApp({ apiKeys: ['config-key-1'] })
    expect((await inject(app, { url: '/health', headers: { 'x-api-key': 'env-key-1' } })).status).toBe(400)
    expect((await inject(app, { url: '/health', headers: { 'x-api-key': 'config-key-1' } })).status).toBe(200)
  })
})

describe('rejections', () => {
  test.each([
    ['no key', {}, 'API key missing'],
    ['a wrong key', { 'x-api-key': 'wrong-key-value' }, 'API key not accepted'],
    ['a key prefix only', { 'x-api-key': KEY.slice(0, -1) }, 'API key not accepted'],
    ['Basic auth', { authorization: `Basic ${KEY}` }, 'API key not accepted'],
  ])('%s: 400 unauthorised in the synth-ai envelope, no key echoed', async (_name, headers, message) => {
    const logger = recordingLogger()
    const app = makeApp({ logger })
    const res = await inject(app, { method: 'POST', url: '/rollout', headers, body: {} })
    expect(res.status).toBe(400)
    expect(res.json()).toEqual({
      detail: { error: { code: 'unauthorised', message: expect.stringContaining(message) } },
    })
    expect(res.text).not.toContain(KEY.slice(0, 8))
    expect(res.text).not.toContain('wrong-key')
    expect(JSON.stringify(logger.records)).not.toContain('wrong-key')
    expect(JSON.stringify(logger.records)).not.toContain(KEY.slice(0, 8))
    expect(logger.records.some((l) => l.level === 'warn' && l.msg?.includes('rejected'))).toBe(true)
  })

  test('authFailureStatus: 401 answers 401 with WWW-Authenticate', async () => {
    const res = await inject(makeApp({ authFailureStatus: 401 }), {
      url: '/info',
      headers: { 'x-api-key': 'nope' },
    })
    expect(res.status).toBe(401)
    expect(res.headers['www-authenticate']).toBe('Bearer')
    expect(res.json().detail.error.code).toBe('unauthorised')
  })

  test('no key configured: 503 missing_environment_api_key', async () => {
    withEnv({})
    const res = await inject(makeApp({ apiKeys: undefined }), {
      url: '/health',
      headers: { 'x-api-key': 'anything' },
    })
    expect(res.status).toBe(503)
    expect(res.json().detail.error.code).toBe('missing_environment_api_key')
  })

  test('an empty apiKeys list counts as no key configured', async () => {
    const res = await inject(makeApp({ apiKeys: [] }), {
      url: '/health',
      headers: { 'x-api-key': 'anything' },
    })
    expect(res.status).toBe(503)
  })

  test.each(['/health', '/info', '/task_info', '/rollouts/abc', '/done'])('%s needs a key', async (url) => {
    const method = url === '/done' ? 'POST' : 'GET'
    const res = await inject(makeApp(), { method, url })
    expect(res.status).toBe(400)
  })
})

describe('helpers', () => {
  test('candidateKeys splits, trims, strips Bearer and stops at 16', () => {
    expect(candidateKeys({ 'x-api-key': ' a ', 'x-api-keys': 'b,,c', authorization: 'Bearer d' })).toEqual([
      'a',
      'b',
      'c',
      'd',
    ])
    const many = Array.from({ length: 40 }, (_, i) => `k${i}`).join(',')
    expect(candidateKeys({ 'x-api-keys': many })).toHaveLength(16)
  })

  test('isAuthorized matches exactly', () => {
    const keys = createKeySource(['abc', 'def']).current()
    expect(isAuthorized(['def'], keys)).toBe(true)
    expect(isAuthorized(['abcd', 'ab', 'ABC'], keys)).toBe(false)
    expect(isAuthorized([], keys)).toBe(false)
  })

  test('matchedKey: the index of the allowed key the first matching candidate equals, -1 for none', () => {
    const keys = createKeySource(['abc', 'def']).current()
    expect(matchedKey(['nope', 'def'], keys)).toBe(1)
    expect(matchedKey(['def', 'abc'], keys)).toBe(1)
    expect(matchedKey(['abc', 'def'], keys)).toBe(0)
    expect(matchedKey(['ab', 'abcd'], keys)).toBe(-1)
  })

  test('each key has an owner id: a 128-bit hash prefix, stable, never the key', () => {
    const keys = createKeySource(['sk-env-abc', 'sk-env-def']).current()
    expect(keys.owners).toEqual([keyOwnerId('sk-env-abc'), keyOwnerId('sk-env-def')])
    expect(keys.owners[0]).toMatch(/^key:[0-9a-f]{32}$/)
    expect(keys.owners[0]).not.toBe(keys.owners[1])
    expect(keyOwnerId('sk-env-abc')).toBe(keyOwnerId('sk-env-abc'))
    expect(keys.owners.join()).not.toContain('sk-env')
  })

  test('keyPrefix', () => {
    expect(keyPrefix(undefined)).toBe('<unset>')
    expect(keyPrefix('')).toBe('<unset>')
    expect(keyPrefix('sk-env-abcdefghijklmnopqrstuvwxyz')).toBe('sk-env...')
    expect(keyPrefix('abcdefgh')).toBe('ab...')
  })
})
