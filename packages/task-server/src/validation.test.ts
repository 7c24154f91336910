import { describe, expect, onTestFinished, test } from 'vitest'
import { z } from 'zod'
import { createTaskApp, defineTaskAppConfig } from './index'
import type { RolloutRequest, TaskAppConfig } from './index'
import { recordingLogger } from '@taskapp/test-utils'
import { AUTH, inject, rolloutBody, testConfig } from './test-helpers'

function makeApp(overrides: Partial<TaskAppConfig> = {}) {
  const app = createTaskApp(testConfig(overrides))
  onTestFinished(() => app.lifecycle.close())
  return app
}

async function postRollout(
  app: ReturnType<typeof makeApp>,
  body: unknown,
  headers: Record<string, string> = {},
) {
  return inject(app, { method: 'POST', url: '/rollout', headers: { ...AUTH, ...headers }, body })
}

describe('invalid rollout requests: 422 with the problems, handler never called', () => {
  test.each([
    [
      'missing trace_correlation_id',
      rolloutBody({ trace_correlation_id: undefined }),
      ['trace_correlation_id'],
    ],
    ['empty trace_correlation_id', rolloutBody({ trace_correlation_id: '' }), ['trace_correlation_id']],
    ['missing env and policy', { trace_correlation_id: 't' }, ['env', 'policy']],
    ['a seed that is not an integer', rolloutBody({ env: { seed: 1.5 } }), ['env.seed']],
    ['a seed that is a string', rolloutBody({ env: { seed: '3' } }), ['env.seed']],
    ['an unknown output_mode', rolloutBody({ policy: { output_mode: 'xml' } }), ['policy.output_mode']],
    ['a policy.config that is not an object', rolloutBody({ policy: { config: 'gpt' } }), ['policy.config']],
    ['a negative safety.max_time_s', rolloutBody({ safety: { max_time_s: -1 } }), ['safety.max_time_s']],
    ['a JSON array', [1, 2], ['']],
  ])('%s', async (_name, body, paths) => {
    let called = false
    const app = makeApp({
      rollout: (r) => {
        called = true
        return { trace_correlation_id: r.trace_correlation_id, reward_info: { outcome_reward: 1 } }
      },
    })
    const res = await postRollout(app, body)
    expect(res.status).toBe(422)
    const error = res.json().detail.error
    expect(error.code).toBe('invalid_request')
    expect(error.message).toMatch(/^Invalid rollout request: /)
    expect(error.issues.map((i: { path: string }) => i.path)).toEqual(paths)
    for (const issue of error.issues) expect(typeof issue.message).toBe('string')
    expect(called).toBe(false)
  })

  test('a body that is not JSON: 422 invalid_json', async () => {
    const res = await inject(makeApp(), {
      method: 'POST',
      url: '/rollout',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: '{"trace_correlation_id": ',
    })
    expect(res.status).toBe(422)
    expect(res.json().detail.error.code).toBe('invalid_json')
  })

  test.each([
    ['an unsupported charset', { 'content-type': 'application/json; charset=latin1' }],
    [
      'an unsupported content-encoding',
      { 'content-type': 'application/json', 'content-encoding': 'compress' },
    ],
  ])('%s: 415 unsupported_encoding', async (_name, headers) => {
    const res = await inject(makeApp(), {
      method: 'POST',
      url: '/rollout',
      headers: { ...AUTH, ...headers },
      body: JSON.stringify(rolloutBody()),
    })
    expect(res.status).toBe(415)
    expect(res.json().detail.error.code).toBe('unsupported_encoding')
  })

  test('JSON without a content type is still parsed (curl -d sends a form type)', async () => {
    const res = await inject(makeApp(), {
      method: 'POST',
      url: '/rollout',
      headers: { ...AUTH, 'content-type': 'application/x-www-form-urlencoded' },
      body: JSON.stringify(rolloutBody()),
    })
    expect(res.status).toBe(200)
  })

  test('an unknown ?mode is a 422', async () => {
    const res = await inject(makeApp(), {
      method: 'POST',
      url: '/rollout?mode=later',
      headers: AUTH,
      body: rolloutBody(),
    })
    expect(res.status).toBe(422)
    expect(res.json().detail.error.issues[0].path).toBe('query.mode')
  })
})

describe('Python-client compatibility', () => {
  test('null for every optional field (pydantic model_dump) is accepted', async () => {
    let seen: RolloutRequest | undefined
    const app = makeApp({
      rollout: (r) => {
        seen = r
        return { trace_correlation_id: r.trace_correlation_id, reward_info: { outcome_reward: 1 } }
      },
    })
    const res = await postRollout(app, {
      trace_correlation_id: 'trace-py',
      env: { env_id: null, env_name: 'banking77', config: null, seed: null },
      policy: {
        policy_id: null,
        policy_name: null,
        config: { model: 'm' },
        output_mode: null,
        structured_config: null,
      },
      on_done: null,
      safety: null,
      training_session_id: null,
      synth_base_url: null,
      context_overrides: null,
      override_bundle_id: null,
      extra_future_field: { kept: true },
    })
    expect(res.status).toBe(200)
    expect(seen?.env.config).toEqual({})
    expect(seen?.policy.output_mode).toBe('tool_calls')
    expect(seen?.safety.max_time_s).toBe(3600)
    expect(seen?.on_done).toBe('reset')
    expect((seen as Record<string, unknown>).extra_future_field).toEqual({ kept: true })
  })
})

describe('config schemas for env.config and policy.config', () => {
  const config = defineTaskAppConfig({
    ...testConfig(),
    envConfigSchema: z.object({ split: z.enum(['train', 'test']).default('train') }),
    policyConfigSchema: z.object({ model: z.string(), temperature: z.number().min(0).max(2).default(0) }),
    rollout: (request) => ({
      trace_correlation_id: request.trace_correlation_id,
      // Typed: env.config.split is 'train' | 'test', policy.config.temperature is a number.
      reward_info: {
        outcome_reward: request.env.config.split === 'train' ? 1 : 0,
        details: { t: request.policy.config.temperature },
      },
    }),
  })

  test('a typed config is still a plain TaskAppConfig (what InProcessTaskApp takes)', () => {
    const plain: TaskAppConfig = config // a compile-time check: typecheck fails if this breaks
    expect(plain.envConfigSchema).toBeDefined()
  })

  test('valid configs reach the handler typed and with the schema defaults', async () => {
    const app = createTaskApp(config)
    onTestFinished(() => app.lifecycle.close())
    const res = await postRollout(app, rolloutBody({ env: {}, policy: { config: { model: 'm' } } }))
    expect(res.status).toBe(200)
    expect(res.json().reward_info).toMatchObject({ outcome_reward: 1, details: { t: 0 } })
  })

  test('invalid configs are a 422 with paths under env.config / policy.config', async () => {
    const app = createTaskApp(config)
    onTestFinished(() => app.lifecycle.close())
    const res = await postRollout(
      app,
      rolloutBody({ env: { config: { split: 'dev' } }, policy: { config: { temperature: 5 } } }),
    )
    expect(res.status).toBe(422)
    const paths = res.json().detail.error.issues.map((i: { path: string }) => i.path)
    expect(paths).toEqual(['env.config.split', 'policy.config.model', 'policy.config.temperature'])
  })
})

describe('handler failures', () => {
  test('a handler that throws: 500 rollout_failed with an error id; the full error only in the log', async () => {
    const logger = recordingLogger()
    const app = makeApp({
      logger,
      rollout: () => {
        throw new Error('db password=hunter2 rejected')
      },
    })
    const res = await postRollout(app, rolloutBody())
    expect(res.status).toBe(500)
    const error = res.json().detail.error
    expect(error.code).toBe('rollout_failed')
    expect(error.error_id).toMatch(/^[0-9a-f-]{36}$/)
    expect(error.message).toContain(error.error_id)
    expect(res.text).not.toContain('hunter2')
    const line = logger.records.find((l) => l.level === 'error')
    expect(line?.obj).toMatchObject({ errorId: error.error_id, trace_correlation_id: 'trace-1' })
    expect((line?.obj.err as Error).message).toContain('hunter2')
  })

  test('an async handler that rejects is handled the same way', async () => {
    const app = makeApp({ rollout: async () => Promise.reject(new Error('boom')) })
    const res = await postRollout(app, rolloutBody())
    expect(res.status).toBe(500)
    expect(res.json().detail.error.code).toBe('rollout_failed')
  })

  test.each([
    ['no reward_info', (t: string) => ({ trace_correlation_id: t }), ['reward_info']],
    [
      'a string reward',
      (t: string) => ({ trace_correlation_id: t, reward_info: { outcome_reward: 'high' } }),
      ['reward_info.outcome_reward'],
    ],
    ['no trace_correlation_id', () => ({ reward_info: { outcome_reward: 1 } }), ['trace_correlation_id']],
    ['not an object', () => 'done', ['']],
    ['undefined', () => undefined, ['']],
    [
      'bad event_rewards',
      (t: string) => ({ trace_correlation_id: t, reward_info: { outcome_reward: 1, event_rewards: ['x'] } }),
      ['reward_info.event_rewards.0'],
    ],
  ])('a handler returning %s: 500 invalid_rollout_response naming the fields', async (_name, make, paths) => {
    const app = makeApp({ rollout: (r) => make(r.trace_correlation_id) as never })
    const res = await postRollout(app, rolloutBody())
    expect(res.status).toBe(500)
    const error = res.json().detail.error
    expect(error.code).toBe('invalid_rollout_response')
    expect(error.issues.map((i: { path: string }) => i.path)).toEqual(paths)
    for (const p of paths.filter(Boolean)) expect(error.message).toContain(p)
  })

  test('a frozen response object from the handler is served (validation works on a copy)', async () => {
    const frozen = Object.freeze({
      trace_correlation_id: 'trace-1',
      reward_info: Object.freeze({ outcome_reward: 0.5 }),
    })
    const app = makeApp({ rollout: () => frozen })
    const first = await postRollout(app, rolloutBody())
    const second = await postRollout(app, rolloutBody())
    expect(first.status).toBe(200)
    expect(second.json()).toEqual({
      trace_correlation_id: 'trace-1',
      reward_info: { outcome_reward: 0.5, outcome_objectives: { reward: 0.5 }, details: {} },
    })
    expect(frozen.reward_info).toEqual({ outcome_reward: 0.5 })
  })

  test('a response that does not echo trace_correlation_id is served, with a warning', async () => {
    const logger = recordingLogger()
    const app = makeApp({
      logger,
      rollout: () => ({ trace_correlation_id: 'other', reward_info: { outcome_reward: 1 } }),
    })
    const res = await postRollout(app, rolloutBody())
    expect(res.status).toBe(200)
    expect(logger.records.some((l) => l.level === 'warn' && l.msg?.includes('trace_correlation_id'))).toBe(
      true,
    )
  })
})

describe('body limit', () => {
  test('a body over limits.bodyLimit: 413 payload_too_large in the envelope', async () => {
    const app = makeApp({ limits: { bodyLimit: 1024 } })
    const res = await postRollout(app, rolloutBody({ padding: 'x'.repeat(2048) }))
    expect(res.status).toBe(413)
    expect(res.json().detail.error).toMatchObject({ code: 'payload_too_large', limit: 1024 })
  })

  test('the default limit is 10 MB: 9 MB passes, 11 MB does not', async () => {
    const app = makeApp()
    const ok = await postRollout(app, rolloutBody({ padding: 'x'.repeat(9 * 1024 * 1024) }))
    expect(ok.status).toBe(200)
    const big = await postRollout(app, rolloutBody({ padding: 'x'.repeat(11 * 1024 * 1024) }))
    expect(big.status).toBe(413)
    expect(big.json().detail.error.limit).toBe(10 * 1024 * 1024)
  })

  test('bodies are not parsed before auth', async () => {
    const app = makeApp({ limits: { bodyLimit: 10 } })
    const res = await inject(app, {
      method: 'POST',
      url: '/rollout',
      headers: { 'x-api-key': 'wrong' },
      body: rolloutBody(),
    })
    expect(res.status).toBe(400)
  })
})
