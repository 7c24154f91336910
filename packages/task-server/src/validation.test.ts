import { describe, expect, onTestFinished, test } from 'vitest'
import { z } from 'zod'
import { createTaskApp, defineTaskAppConfig, taskInfoSchema } from './index'
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
    ['blank trace_correlation_id', rolloutBody({ trace_correlation_id: ' \t ' }), ['trace_correlation_id']],
    ['an unknown planner_mode', rolloutBody({ planner_mode: 'greedy' }), ['planner_mode']],
    [
      'context_overrides that are not a list',
      rolloutBody({ context_overrides: { env_vars: {} } }),
      ['context_overrides'],
    ],
    [
      'a context override that is not an object',
      rolloutBody({ context_overrides: ['AGENTS.md'] }),
      ['context_overrides.0'],
    ],
    ['a paired_eval that is not an object', rolloutBody({ paired_eval: true }), ['paired_eval']],
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

describe('both synth-ai generations (container @ff63005a, task app @b18e1d2c)', () => {
  function capturingApp(respond?: (r: RolloutRequest) => unknown) {
    const seen: RolloutRequest[] = []
    const app = makeApp({
      rollout: (r) => {
        seen.push(r)
        return (respond?.(r) ?? {
          trace_correlation_id: r.trace_correlation_id,
          reward_info: { outcome_reward: 1 },
        }) as never
      },
    })
    return { app, seen }
  }

  test('task app generation: a float safety.max_time_s passes as is', async () => {
    const { app, seen } = capturingApp()
    const res = await postRollout(app, rolloutBody({ safety: { max_time_s: 1800.5 } }))
    expect(res.status).toBe(200)
    expect(seen[0]?.safety.max_time_s).toBe(1800.5)
  })

  test('container generation: the fields added @ff63005a reach the handler', async () => {
    const { app, seen } = capturingApp()
    const override = {
      file_artifacts: { 'AGENTS.md': '# Guidelines' },
      preflight_script: '#!/bin/bash\necho ok',
      env_vars: { STRATEGY: 'test_first' },
      mutation_type: 'multi',
      created_at: '2025-01-01T00:00:00Z',
      override_id: 'ov_1',
    }
    const res = await postRollout(
      app,
      rolloutBody({
        safety: { max_time_s: 3600 },
        context_overrides: [override],
        override_bundle_id: 'bundle-1',
        planner_mode: 'waypoint_planned',
        paired_eval: { pair_id: 'p1', arm: 'planned' },
        waypoint_plan_request: { max_waypoints: 4 },
      }),
    )
    expect(res.status).toBe(200)
    expect(seen[0]).toMatchObject({
      context_overrides: [override],
      override_bundle_id: 'bundle-1',
      planner_mode: 'waypoint_planned',
      paired_eval: { pair_id: 'p1', arm: 'planned' },
      waypoint_plan_request: { max_waypoints: 4 },
    })
  })

  test('trace_correlation_id is stripped, as the container generation does', async () => {
    const { app, seen } = capturingApp()
    const res = await postRollout(app, rolloutBody({ trace_correlation_id: '  trace-7\n' }))
    expect(res.status).toBe(200)
    expect(seen[0]?.trace_correlation_id).toBe('trace-7')
    expect(res.json().trace_correlation_id).toBe('trace-7')
  })

  test('every RolloutResponse field of @ff63005a is validated and sent on', async () => {
    const full = {
      reward_info: {
        outcome_reward: 0.75,
        event_rewards: [0.5, 1],
        outcome_objectives: { reward: 0.75, latency_ms: 120 },
        event_objectives: [{ reward: 0.5 }, { reward: 1 }],
        instance_objectives: [{ reward: 0.75 }],
        details: { steps: 2 },
        horizon_bin_success: { '0-10': 1, '10-20': 0.5 },
        eta: 0.9,
        reach: 12,
        pi_gap: -0.1,
        planner_used: true,
        planner_failure_code: null,
        multi_agent: { agents: 2 },
      },
      trace: { session_id: 's-1', event_history: [] },
      inference_url: 'http://127.0.0.1:9/v1?cid=trace-1',
      artifact: [
        { content: 'fn main() {}', content_type: 'rust_code', metadata: { file_path: 'main.rs' } },
        { content: { answer: 42 }, name: 'answer', size_bytes: 13 },
      ],
      success_status: 'success',
      status_detail: 'ok',
      override_application_results: [
        { override_id: 'ov_1', overall_status: 'applied', errors: [], file_artifacts: {}, env_vars: {} },
      ],
    }
    const { app } = capturingApp((r) => ({ trace_correlation_id: r.trace_correlation_id, ...full }))
    const res = await postRollout(app, rolloutBody())
    expect(res.status).toBe(200)
    expect(res.json()).toEqual({ trace_correlation_id: 'trace-1', ...full })
  })

  test.each(['success', 'timeout', 'network_error', 'apply_failed', 'runtime_error', 'failure'])(
    'success_status %s is accepted',
    async (status) => {
      const { app } = capturingApp((r) => ({
        trace_correlation_id: r.trace_correlation_id,
        reward_info: { outcome_reward: 0 },
        success_status: status,
      }))
      const res = await postRollout(app, rolloutBody())
      expect(res.status).toBe(200)
      expect(res.json().success_status).toBe(status)
    },
  )

  test('TaskInfo.limits.timeout_seconds is an int, as in every generation', () => {
    const task = { id: 't', name: 'T' }
    expect(taskInfoSchema.safeParse({ task, limits: { timeout_seconds: 30 } }).success).toBe(true)
    expect(taskInfoSchema.safeParse({ task, limits: { timeout_seconds: 1.5 } }).success).toBe(false)
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
    [
      'a blank trace_correlation_id',
      () => ({ trace_correlation_id: '  ', reward_info: { outcome_reward: 1 } }),
      ['trace_correlation_id'],
    ],
    [
      'a success_status outside SuccessStatus',
      (t: string) => ({ trace_correlation_id: t, reward_info: { outcome_reward: 1 }, success_status: 'ok' }),
      ['success_status'],
    ],
    [
      'an artifact without content',
      (t: string) => ({
        trace_correlation_id: t,
        reward_info: { outcome_reward: 1 },
        artifact: [{ content_type: 'text' }],
      }),
      ['artifact.0.content'],
    ],
    [
      'a trace that is not an object',
      (t: string) => ({ trace_correlation_id: t, reward_info: { outcome_reward: 1 }, trace: 'session-1' }),
      ['trace'],
    ],
    [
      'instance_objectives that are not a list of objectives',
      (t: string) => ({
        trace_correlation_id: t,
        reward_info: { outcome_reward: 1, instance_objectives: { reward: 1 } },
      }),
      ['reward_info.instance_objectives'],
    ],
    [
      'a non-boolean planner_used',
      (t: string) => ({ trace_correlation_id: t, reward_info: { outcome_reward: 1, planner_used: 'yes' } }),
      ['reward_info.planner_used'],
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
