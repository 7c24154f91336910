/**
 * Contract test: the JSON on the wire must keep the shape of synth-ai's task app (fixtures
 * written from the reference, section 2). A renamed key, a missing key, an extra key or a
 * changed JSON type fails here.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, onTestFinished, test } from 'vitest'
import { generateContainerKeyPair } from './container-auth/sign'
import { createTaskApp, type TaskAppConfig } from './index'
import { inject } from './test-helpers'

interface WireCase {
  request: { method: string; path: string; auth?: boolean; headers?: Record<string, string>; body?: unknown }
  /** What the rollout handler returns; by default it echoes trace_correlation_id with outcome_reward 1. */
  handler?: unknown
  status: number
  body: unknown
}

const fixture = JSON.parse(
  readFileSync(new URL('./fixtures/wire-contract.json', import.meta.url), 'utf8'),
) as {
  config: { app_id: string; name: string; api_key: string }
  cases: Record<string, WireCase>
  container_auth: { cases: Record<string, WireCase> }
  no_key_configured: WireCase
}

const LITERAL_KEYS = new Set(['status', 'healthy', 'ok', 'service', 'required', 'code'])

/** Keys and JSON types, recursively; arrays by their first element. */
function shape(value: unknown): unknown {
  if (value === null) return 'null'
  if (Array.isArray(value)) return value.length === 0 ? [] : [shape(value[0])]
  if (typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, shape(v)]),
    )
  }
  return typeof value
}

/** `[path, value]` of every literal key (status, code, ...) in `value`. */
function literals(value: unknown, path = ''): [string, unknown][] {
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
    const p = path ? `${path}.${k}` : k
    return [
      ...(LITERAL_KEYS.has(k) && (v === null || typeof v !== 'object') ? [[p, v] as [string, unknown]] : []),
      ...literals(v, p),
    ]
  })
}

function appFor(apiKeys: string[], containerAuth?: TaskAppConfig['containerAuth'], handler?: unknown) {
  const { app_id, name } = fixture.config
  const app = createTaskApp({
    appId: app_id,
    name,
    description: 'contract fixture app',
    apiKeys,
    containerAuth,
    provideTasksetDescription: () => ({ splits: ['train'] }),
    provideTaskInstances: (seeds) =>
      seeds.map((seed) => ({ task: { id: app_id, name }, dataset: { id: app_id }, task_metadata: { seed } })),
    rollout: (request) =>
      (handler as never) ?? {
        trace_correlation_id: request.trace_correlation_id,
        reward_info: { outcome_reward: 1 },
      },
  })
  onTestFinished(() => app.lifecycle.close())
  return app
}

async function run(app: ReturnType<typeof appFor>, c: WireCase) {
  const headers: Record<string, string> = { ...c.request.headers }
  if (c.request.auth) headers['X-API-Key'] = fixture.config.api_key
  return inject(app, { method: c.request.method, url: c.request.path, headers, body: c.request.body })
}

function check(actual: unknown, expected: unknown) {
  expect(shape(actual)).toEqual(shape(expected))
  expect(literals(actual)).toEqual(literals(expected))
  // Error messages start like the fixture's (the rest may say more).
  const message = (expected as { detail?: { error?: { message?: string } } })?.detail?.error?.message
  if (message)
    expect(
      (actual as { detail: { error: { message: string } } }).detail.error.message.startsWith(message),
    ).toBe(true)
}

describe('wire contract (synth-ai section 2, contracts.py @ff63005a)', () => {
  test.each(Object.entries(fixture.cases))('%s', async (_name, c) => {
    const res = await run(appFor([fixture.config.api_key], undefined, c.handler), c)
    expect(res.status).toBe(c.status)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    check(res.json(), c.body)
  })

  test('no key configured: 503 missing_environment_api_key', async () => {
    const c = fixture.no_key_configured
    const res = await run(appFor([]), c)
    expect(res.status).toBe(c.status)
    check(res.json(), c.body)
  })

  test.each(Object.entries(fixture.container_auth.cases))('trusted container keys: %s', async (_name, c) => {
    const res = await run(
      appFor([fixture.config.api_key], { trustedKeys: generateContainerKeyPair().trusted }),
      c,
    )
    expect(res.status).toBe(c.status)
    check(res.json(), c.body)
  })

  test('the shape checker itself catches drift', () => {
    expect(shape({ reward_info: { outcome_reward: 1 } })).not.toEqual(
      shape({ rewardInfo: { outcomeReward: 1 } }),
    )
    expect(shape({ a: 1 })).not.toEqual(shape({ a: '1' }))
    expect(shape({ a: 1 })).not.toEqual(shape({ a: 1, b: 2 }))
    expect(literals({ detail: { error: { code: 'unauthorised' } } })).not.toEqual(
      literals({ detail: { error: { code: 'unauthorized' } } }),
    )
  })
})
