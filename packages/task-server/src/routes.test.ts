import express from 'express'
import { describe, expect, onTestFinished, test } from 'vitest'
import { createTaskApp } from './index'
import type { TaskAppConfig } from './index'
import { recordingLogger } from '@taskapp/test-utils'
import { AUTH, KEY, inject, rolloutBody, testConfig } from './test-helpers'

function makeApp(overrides: Partial<TaskAppConfig> = {}) {
  const app = createTaskApp(testConfig(overrides))
  onTestFinished(() => app.lifecycle.close())
  return app
}

describe('public routes', () => {
  test('GET / answers without auth', async () => {
    const res = await inject(makeApp(), { url: '/' })
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({ status: 'ok', service: 'banking77' })
  })

  test('HEAD / answers 200 without auth and without a body', async () => {
    const res = await inject(makeApp(), { method: 'HEAD', url: '/' })
    expect(res.status).toBe(200)
    expect(res.text).toBe('')
  })
})

describe('GET /health', () => {
  test('healthy with the auth block once ready', async () => {
    const app = makeApp()
    await app.lifecycle.ready()
    const res = await inject(app, { url: '/health', headers: AUTH })
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({
      healthy: true,
      auth: { required: true, expected_prefix: `${KEY.slice(0, 5)}...` },
    })
  })

  test('never shows more than a quarter of a short key', async () => {
    const app = makeApp({ apiKeys: ['test'] })
    const res = await inject(app, { url: '/health', headers: { 'x-api-key': 'test' } })
    expect(res.json().auth.expected_prefix).toBe('t...')
  })

  test('auth.required is false and no key is needed when requireApiKey is false', async () => {
    const app = makeApp({ requireApiKey: false, apiKeys: [] })
    const res = await inject(app, { url: '/health' })
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({ healthy: true, auth: { required: false, expected_prefix: '<unset>' } })
  })
})

describe('GET /info', () => {
  test('derives the base task info from appId and name by default', async () => {
    const res = await inject(makeApp(), { url: '/info', headers: AUTH })
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({
      service: { task: { id: 'banking77', name: 'Banking77' }, version: null },
      dataset: { id: 'banking77' },
      rubrics: null,
      inference: {},
      limits: {},
    })
  })

  test('serves baseTaskInfo and rubrics as given', async () => {
    const app = makeApp({
      baseTaskInfo: {
        task: { id: 'b77', name: 'B77', version: '1.2.0' },
        dataset: { id: 'b77', splits: ['train'], default_split: 'train' },
        inference: { model: 'gpt-4o-mini' },
        limits: { max_turns: 1 },
      },
      rubrics: { outcome: { criteria: [{ id: 'correct', weight: 1 }] } },
    })
    const res = await inject(app, { url: '/info', headers: AUTH })
    expect(res.json()).toEqual({
      service: { task: { id: 'b77', name: 'B77', version: '1.2.0' }, version: '1.2.0' },
      dataset: { id: 'b77', splits: ['train'], default_split: 'train' },
      rubrics: { outcome: { criteria: [{ id: 'correct', weight: 1 }] }, events: null },
      inference: { model: 'gpt-4o-mini' },
      limits: { max_turns: 1 },
    })
  })
})

describe('GET /task_info', () => {
  test('no seed: the taskset description', async () => {
    const res = await inject(makeApp(), { url: '/task_info', headers: AUTH })
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({ taskset: { splits: ['train', 'test'], size: 100 } })
  })

  test('one seed: a single TaskInfo with defaults filled in', async () => {
    const res = await inject(makeApp(), { url: '/task_info?seed=7', headers: AUTH })
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({
      task: { id: 'banking77', name: 'Banking77' },
      dataset: { id: 'banking77', split: 'train' },
      inference: {},
      limits: {},
      task_metadata: { seed: 7 },
    })
  })

  test.each([
    ['/task_info?seed=1&seed=2', [1, 2]],
    ['/task_info?seeds=4&seeds=5&seeds=6', [4, 5, 6]],
    ['/task_info?seed=1&seeds=2', [1, 2]],
  ])('%s: an array, seed before seeds', async (url, seeds) => {
    const received: number[][] = []
    const app = makeApp({
      provideTaskInstances: (s) => {
        received.push(s)
        return s.map((seed) => ({ task: { id: 't', name: 'T' }, task_metadata: { seed } }))
      },
    })
    const res = await inject(app, { url, headers: AUTH })
    expect(res.status).toBe(200)
    expect(received).toEqual([seeds])
    expect(res.json().map((t: { task_metadata: { seed: number } }) => t.task_metadata.seed)).toEqual(seeds)
  })

  test('a seed that is not an integer is a 422 naming it', async () => {
    const res = await inject(makeApp(), { url: '/task_info?seed=1&seeds=x', headers: AUTH })
    expect(res.status).toBe(422)
    const error = res.json().detail.error
    expect(error.code).toBe('invalid_request')
    expect(error.issues).toEqual([{ path: 'query.seeds.0', message: 'expected an integer seed' }])
  })

  test('an invalid TaskInfo from the provider is a 500 naming the field', async () => {
    const app = makeApp({ provideTaskInstances: () => [{ task: { id: 't' } } as never] })
    const res = await inject(app, { url: '/task_info?seed=1', headers: AUTH })
    expect(res.status).toBe(500)
    const error = res.json().detail.error
    expect(error.code).toBe('invalid_task_info')
    expect(error.issues.map((i: { path: string }) => i.path)).toEqual(['0.task.name'])
  })

  test('a provider that throws: 500 with an error id, the error only in the log', async () => {
    const logger = recordingLogger()
    const app = makeApp({
      logger,
      provideTaskInstances: () => {
        throw new Error('dataset file /secret/path missing')
      },
    })
    const res = await inject(app, { url: '/task_info?seed=1', headers: AUTH })
    expect(res.status).toBe(500)
    const error = res.json().detail.error
    expect(error.code).toBe('internal_error')
    expect(res.text).not.toContain('/secret/path')
    const line = logger.records.find((l) => l.level === 'error')
    expect(line?.obj.errorId).toBe(error.error_id)
    expect((line?.obj.err as Error).message).toContain('/secret/path')
  })

  test('a provider slower than limits.requestTimeoutMs: 504 and its signal fires', async () => {
    let seen: AbortSignal | undefined
    const app = makeApp({
      limits: { requestTimeoutMs: 30 },
      provideTasksetDescription: ({ signal }) => {
        seen = signal
        return new Promise(() => {})
      },
    })
    const res = await inject(app, { url: '/task_info', headers: AUTH })
    expect(res.status).toBe(504)
    expect(res.json().detail.error.code).toBe('request_timeout')
    expect(seen?.aborted).toBe(true)
  })
})

describe('POST /rollout (sync) and POST /done', () => {
  test('answers the validated response with outcome_objectives filled in', async () => {
    const res = await inject(makeApp(), {
      method: 'POST',
      url: '/rollout',
      headers: AUTH,
      body: rolloutBody(),
    })
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({
      trace_correlation_id: 'trace-1',
      reward_info: { outcome_reward: 1, outcome_objectives: { reward: 1 }, details: {} },
    })
  })

  test('the handler gets typed input with defaults and a context', async () => {
    let seen: unknown
    let ctxSeen: { requestId: string; mode: string; aborted: boolean } | undefined
    const app = makeApp({
      rollout: (request, ctx) => {
        seen = request
        ctxSeen = { requestId: ctx.requestId, mode: ctx.mode, aborted: ctx.signal.aborted }
        return { trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: 0.5 } }
      },
    })
    const res = await inject(app, {
      method: 'POST',
      url: '/rollout',
      headers: { ...AUTH, 'x-request-id': 'req-42' },
      body: { trace_correlation_id: 'trace-9', env: {}, policy: {} },
    })
    expect(res.status).toBe(200)
    expect(res.headers['x-request-id']).toBe('req-42')
    expect(seen).toEqual({
      trace_correlation_id: 'trace-9',
      env: { config: {} },
      policy: { config: {}, output_mode: 'tool_calls' },
      on_done: 'reset',
      safety: { max_time_s: 3600 },
    })
    expect(ctxSeen).toEqual({ requestId: 'req-42', mode: 'sync', aborted: false })
  })

  test('the legacy `metrics` alias is accepted and answered as reward_info', async () => {
    const app = makeApp({
      rollout: (r) =>
        ({ trace_correlation_id: r.trace_correlation_id, metrics: { outcome_reward: 0.25 } }) as never,
    })
    const res = await inject(app, { method: 'POST', url: '/rollout', headers: AUTH, body: rolloutBody() })
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({
      trace_correlation_id: 'trace-1',
      reward_info: { outcome_reward: 0.25, outcome_objectives: { reward: 0.25 }, details: {} },
    })
  })

  test('POST /done', async () => {
    const res = await inject(makeApp(), { method: 'POST', url: '/done', headers: AUTH })
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({ ok: true, service: 'banking77' })
  })
})

describe('other routes', () => {
  test('an unknown route is a 404 in the error envelope', async () => {
    const res = await inject(makeApp(), { url: '/nope', headers: AUTH })
    expect(res.status).toBe(404)
    expect(res.json().detail.error.code).toBe('not_found')
  })

  test.each([
    ['GET', '/rollout', 'POST'],
    ['PUT', '/health', 'GET, HEAD'],
    ['POST', '/task_info', 'GET, HEAD'],
    ['GET', '/done', 'POST'],
    ['PUT', '/rollouts/abc', 'GET, HEAD, DELETE'],
    ['OPTIONS', '/health', 'GET, HEAD'],
    ['DELETE', '/info', 'GET, HEAD'],
    ['POST', '/', 'GET, HEAD'],
  ])('%s %s is a 405 whose Allow comes from the registered routes (%s)', async (method, url, allow) => {
    const res = await inject(makeApp(), { method, url, headers: AUTH })
    expect(res.status).toBe(405)
    expect(res.headers.allow).toBe(allow)
    expect(res.json().detail.error.code).toBe('method_not_allowed')
  })

  test('optional routes get their 405 too, only when they are on', async () => {
    const on = makeApp({ exposeDebugEnv: true, proxy: { apiKey: 'sk-vendor' } })
    const debug = await inject(on, { method: 'POST', url: '/debug/env', headers: AUTH })
    expect([debug.status, debug.headers.allow]).toEqual([405, 'GET, HEAD'])
    const proxy = await inject(on, { url: '/proxy/v1/chat/completions', headers: AUTH })
    expect([proxy.status, proxy.headers.allow]).toEqual([405, 'POST'])
    const off = makeApp()
    expect((await inject(off, { method: 'POST', url: '/debug/env', headers: AUTH })).status).toBe(404)
    expect((await inject(off, { url: '/proxy/v1/chat/completions', headers: AUTH })).status).toBe(404)
  })

  test('/debug/env is off by default', async () => {
    const res = await inject(makeApp(), { url: '/debug/env', headers: AUTH })
    expect(res.status).toBe(404)
  })

  test('/debug/env, when on, shows only 6-character prefixes and needs auth', async () => {
    const saved = { ...process.env }
    onTestFinished(() => {
      for (const k of ['OPENAI_API_KEY', 'GROQ_API_KEY', 'ENVIRONMENT_API_KEY']) {
        if (saved[k] === undefined) delete process.env[k]
        else process.env[k] = saved[k]
      }
    })
    process.env.OPENAI_API_KEY = 'sk-proj-abcdefghijklmnop'
    delete process.env.GROQ_API_KEY
    delete process.env.ENVIRONMENT_API_KEY
    const app = makeApp({ exposeDebugEnv: true })
    expect((await inject(app, { url: '/debug/env' })).status).toBe(400)
    const res = await inject(app, { url: '/debug/env', headers: AUTH })
    expect(res.json()).toEqual({
      has_ENVIRONMENT_API_KEY: false,
      OPENAI_API_KEY_prefix: 'sk-pro…',
      GROQ_API_KEY_prefix: '',
    })
    expect(res.text).not.toContain('abcdefghijklmnop')
  })

  test('CORS: preflight answered before auth; any origin when corsOrigins is []', async () => {
    const app = makeApp({ corsOrigins: [] })
    const res = await inject(app, {
      method: 'OPTIONS',
      url: '/rollout',
      headers: {
        origin: 'https://optimizer.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'x-api-key',
      },
    })
    expect(res.status).toBe(200)
    expect(res.headers['access-control-allow-origin']).toBe('https://optimizer.example')
    expect(res.headers['access-control-allow-headers']).toBe('x-api-key')
  })

  test('CORS: an origin not in the list gets no CORS headers; none at all without corsOrigins', async () => {
    const listed = makeApp({ corsOrigins: ['https://a.example'] })
    const ok = await inject(listed, { url: '/', headers: { origin: 'https://a.example' } })
    expect(ok.headers['access-control-allow-origin']).toBe('https://a.example')
    const other = await inject(listed, { url: '/', headers: { origin: 'https://b.example' } })
    expect(other.headers['access-control-allow-origin']).toBeUndefined()
    const none = await inject(makeApp(), { url: '/', headers: { origin: 'https://a.example' } })
    expect(none.headers['access-control-allow-origin']).toBeUndefined()
  })

  test('an unsafe X-Request-Id is replaced by a generated one', async () => {
    const res = await inject(makeApp(), { url: '/', headers: { 'x-request-id': 'bad id with spaces' } })
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
  })
})

describe('middleware', () => {
  test('POST /rollout (the fast path) gets what every route gets: request id, closing gate', async () => {
    const app = createTaskApp(testConfig())
    for (const [method, url] of [
      ['POST', '/rollout'],
      ['GET', '/info'],
    ] as const) {
      const res = await inject(app, {
        method,
        url,
        headers: { ...AUTH, 'x-request-id': 'req-7' },
        body: method === 'POST' ? rolloutBody() : undefined,
      })
      expect([url, res.status, res.headers['x-request-id']]).toEqual([url, 200, 'req-7'])
    }
    await app.lifecycle.close()
    for (const [method, url] of [
      ['POST', '/rollout'],
      ['GET', '/info'],
    ] as const) {
      const res = await inject(app, {
        method,
        url,
        headers: AUTH,
        body: method === 'POST' ? rolloutBody() : undefined,
      })
      expect([url, res.status, res.json().detail.error.code]).toEqual([url, 503, 'shutting_down'])
      expect(res.headers.connection).toBe('close')
    }
  })

  test('middleware in front of the task app runs for POST /rollout like for every other route', async () => {
    // Express runs layers in the order they were added and the task app ends every request (404
    // last), so middleware goes in front: in an outer app that mounts the task app.
    const seen: string[] = []
    const outer = express()
    outer.use((req, _res, next) => {
      seen.push(`${req.method} ${req.path}`)
      next()
    })
    outer.use(makeApp())
    expect(
      (await inject(outer, { method: 'POST', url: '/rollout', headers: AUTH, body: rolloutBody() })).status,
    ).toBe(200)
    expect((await inject(outer, { url: '/health', headers: AUTH })).status).toBe(200)
    expect(seen).toEqual(['POST /rollout', 'GET /health'])
  })
})
