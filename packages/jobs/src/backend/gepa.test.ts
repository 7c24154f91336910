/**
 * GEPA jobs end to end on real sockets: the example task app (createTaskApp + its buildConfig),
 * the local backend, and the deterministic model as upstream. No test double anywhere.
 */
import { describe, expect, it } from 'vitest'
import { createDeterministicModel } from '../model/deterministic-model'
import { parseRules } from '../model/rules'
import { createLocalBackend } from './local-backend'
import {
  call,
  exampleConfig,
  exampleTaskAppConfig,
  g3Body,
  names,
  serveExampleTaskApp,
  serveTaskApp,
  untilEnd,
  AUTH,
  BACKEND_KEY,
  backendWithModel,
} from './test-helpers'

async function runExampleJob(gepa: Record<string, unknown> = {}) {
  const task = await serveExampleTaskApp()
  await using model = await createDeterministicModel()
  await using backend = await createLocalBackend({ upstream: { baseUrl: model.url }, apiKeys: [BACKEND_KEY] })
  const created = await call(backend, 'POST', '/api/v1/offline/jobs', g3Body(exampleConfig(task.url, gepa)))
  expect(created.status).toBe(200)
  expect(created.json.job_id).toMatch(/^pl_[0-9a-f]{24}$/)
  const { status, sse } = await untilEnd(backend, created.json.job_id as string)
  return { status, sse, task, modelStats: { ...model.stats } }
}

describe('a GEPA job over the example task app', { timeout: 60_000 }, () => {
  it('improves the validation score over the baseline, through real reflection calls', async () => {
    const { status, sse, modelStats } = await runExampleJob()
    expect(status.status).toBe('succeeded')
    expect(status.error).toBeNull()
    const baseline = status.baseline_reward as number
    const best = status.best_reward as number
    expect(baseline).toBeGreaterThan(0)
    expect(baseline).toBeLessThan(0.5)
    expect(best).toBeGreaterThan(baseline)
    expect(status.best_score).toBe(best)
    // The best prompt is the initial one plus rules the model drew from failed examples.
    const prompt = status.best_candidate?.system_prompt ?? ''
    expect(prompt.startsWith('You route customer-support tickets')).toBe(true)
    expect(parseRules(prompt).length).toBeGreaterThan(0)
    expect(status.best_prompt).toBe(prompt)
    expect(status.best_candidate?.messages.map((m) => m.role)).toEqual(['system', 'user'])
    expect(modelStats.reflection).toBeGreaterThan(0)
    expect(status.generations_completed).toBeGreaterThan(0)
    expect(status.candidates_evaluated).toBeGreaterThan(0)
    expect(status.usage.calls).toBe(modelStats.task + modelStats.reflection)
    expect(status.usage.total_tokens).toBeGreaterThan(0)
    const completed = sse.events.at(-1)
    expect(completed?.type).toBe('learning.policy.gepa.job.completed')
    expect(completed?.data).toMatchObject({ best_score: best, baseline_score: baseline })
  })

  it('is deterministic: the same job finds the same prompt and scores', async () => {
    const first = await runExampleJob()
    const second = await runExampleJob()
    expect(second.status.best_candidate?.system_prompt).toBe(first.status.best_candidate?.system_prompt)
    expect(second.status.best_reward).toBe(first.status.best_reward)
    expect(second.status.baseline_reward).toBe(first.status.baseline_reward)
    expect(second.status.rollouts_used).toBe(first.status.rollouts_used)
  })

  it('emits the reference event names with strictly increasing seq, in order', async () => {
    const { sse, status } = await runExampleJob()
    const seqs = sse.events.map((e) => e.seq)
    expect(seqs[0]).toBe(1)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe((seqs[i - 1] as number) + 1)
    expect(sse.ids).toEqual(seqs)
    const order = names(sse.events)
    expect(order[0]).toBe('job.started')
    expect(order[1]).toBe('baseline')
    expect(order.at(-2)).toBe('validation.completed')
    expect(order.at(-1)).toBe('job.completed')
    for (const name of [
      'generation.started',
      'candidate.evaluated',
      'generation.completed',
      'candidate.new_best',
      'progress',
    ]) {
      expect(order).toContain(name)
    }
    for (const e of sse.events)
      expect(e).toMatchObject({ job_id: status.job_id, level: expect.any(String), data: expect.any(Object) })
    const evaluated = sse.events.filter((e) => e.type.endsWith('.candidate.evaluated'))
    expect(evaluated.length).toBe(status.candidates_evaluated)
    for (const e of evaluated) {
      expect(e.data).toMatchObject({
        candidate_id: expect.stringMatching(/^cand_/),
        accuracy: expect.any(Number),
        accepted: expect.any(Boolean),
        generation: expect.any(Number),
      })
    }
  })

  it('stays within rollout.budget, counted by the task app itself', async () => {
    const { status, task } = await runExampleJob({
      rollout: { budget: 60, max_concurrent: 3, minibatch_size: 5 },
    })
    expect(status.status).toBe('succeeded')
    expect(status.rollout_budget).toBe(60)
    expect(status.rollouts_used).toBeLessThanOrEqual(60)
    expect(task.rollouts()).toBe(status.rollouts_used)
    expect(status.finish_reason).toBe('budget_exhausted')
  })

  it('fails at once when the budget cannot pay for the baseline', async () => {
    const { status } = await runExampleJob({ rollout: { budget: 5 } })
    expect(status).toMatchObject({ status: 'failed', error_code: 'TASKAPP_ERR_JOBS_INVALID_CONFIG' })
    expect(status.error).toContain('prompt_learning.gepa.rollout.budget (5)')
  })

  it('never runs more than max_concurrent rollouts at once', async () => {
    const base = exampleTaskAppConfig()
    let inFlight = 0
    let peak = 0
    const task = await serveTaskApp({
      ...base,
      rollout: async (request, ctx) => {
        peak = Math.max(peak, ++inFlight)
        try {
          return await base.rollout(request, ctx)
        } finally {
          inFlight -= 1
        }
      },
    })
    await using model = await createDeterministicModel()
    await using backend = await createLocalBackend({ upstream: { baseUrl: model.url } })
    const pl = exampleConfig(task.url, { rollout: { budget: 60, max_concurrent: 2, minibatch_size: 4 } })
    const created = await call(backend, 'POST', '/api/v1/offline/jobs', g3Body(pl))
    const { status } = await untilEnd(backend, created.json.job_id as string)
    expect(status.status).toBe('succeeded')
    expect(task.rollouts()).toBe(status.rollouts_used)
    expect(peak).toBeGreaterThan(0)
    expect(peak).toBeLessThanOrEqual(2)
  })
})

describe('the job API', () => {
  it('fails a MIPRO job at once with a clear message', async () => {
    await using backend = await createLocalBackend({
      upstream: { baseUrl: 'http://127.0.0.1:9/v1' },
      apiKeys: [BACKEND_KEY],
    })
    const created = await call(backend, 'POST', '/api/v1/offline/jobs', {
      kind: 'mipro_offline',
      config: { prompt_learning: { algorithm: 'mipro' } },
    })
    expect(created.status).toBe(200)
    expect(created.json.status).toBe('failed')
    const { status, sse } = await untilEnd(backend, created.json.job_id as string)
    expect(status).toMatchObject({ status: 'failed', error_code: 'TASKAPP_ERR_JOBS_UNSUPPORTED_ALGORITHM' })
    expect(status.error).toMatch(/GEPA only.*MIPRO/)
    expect(sse.events.map((e) => e.type)).toEqual(['learning.policy.mipro.job.failed'])
  })

  it('answers 401 without a key or with a wrong one, on every job route', async () => {
    await using backend = await createLocalBackend({
      upstream: { baseUrl: 'http://127.0.0.1:9/v1' },
      apiKeys: [BACKEND_KEY],
    })
    const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer nope' }, { 'x-api-key': 'nope' }]
    for (const headers of attempts) {
      const res = await call(backend, 'POST', '/api/v1/offline/jobs', g3Body({}), headers)
      expect(res.status).toBe(401)
      expect(res.json.error.code).toBe('unauthorized')
      expect((await call(backend, 'GET', '/api/v1/offline/jobs/pl_x', undefined, headers)).status).toBe(401)
    }
    const viaXApiKey = await call(backend, 'GET', '/api/v1/offline/jobs/pl_x', undefined, {
      'x-api-key': BACKEND_KEY,
    })
    expect(viaXApiKey.status).toBe(404)
  })

  it('rejects a bad config with 400 naming the field', async () => {
    await using backend = await createLocalBackend({ upstream: { baseUrl: 'http://127.0.0.1:9/v1' } })
    const bad = exampleConfig('http://127.0.0.1:9')
    delete (bad.gepa as Record<string, unknown>).evaluation
    const res = await call(backend, 'POST', '/api/v2/offline/jobs', g3Body(bad))
    expect(res.status).toBe(400)
    expect(res.json.error.code).toBe('TASKAPP_ERR_JOBS_INVALID_CONFIG')
    expect(res.json.detail).toContain('prompt_learning.gepa.evaluation.seeds')
  })

  it('answers 429 past maxActiveJobs', async () => {
    await using backend = await createLocalBackend({
      upstream: { baseUrl: 'http://127.0.0.1:9/v1' },
      maxActiveJobs: 1,
    })
    const body = g3Body(exampleConfig('http://127.0.0.1:9'), { auto_start: false })
    expect((await call(backend, 'POST', '/api/v1/offline/jobs', body)).json.status).toBe('pending')
    const second = await call(backend, 'POST', '/api/v1/offline/jobs', body)
    expect(second.status).toBe(429)
    expect(second.json.detail).toMatch(/at most 1 jobs/)
  })
})

describe('jobs that cannot go on fail with a reason', { timeout: 60_000 }, () => {
  it('a strict health check against a task app that is not there', async () => {
    await using backend = await createLocalBackend({ upstream: { baseUrl: 'http://127.0.0.1:9/v1' } })
    const pl = { ...exampleConfig('http://127.0.0.1:9'), rollout_health_check_mode: 'strict' }
    const created = await call(backend, 'POST', '/api/v1/offline/jobs', g3Body(pl))
    const { status } = await untilEnd(backend, created.json.job_id as string)
    expect(status).toMatchObject({ status: 'failed', error_code: 'TASKAPP_ERR_JOBS_TASK_APP_UNHEALTHY' })
    expect(status.error).toContain('/health answered unreachable')
  })

  it('a reflection the upstream model cannot answer', async () => {
    const task = await serveTaskApp({
      appId: 'never-right',
      name: 'Never right',
      description: 'Scores 0 without asking a model.',
      requireApiKey: false,
      containerAuth: { mode: 'disabled' },
      provideTasksetDescription: () => ({}),
      provideTaskInstances: () => [],
      rollout: (request) => ({
        trace_correlation_id: request.trace_correlation_id,
        reward_info: { outcome_reward: 0 },
      }),
    })
    await using backend = await createLocalBackend({ upstream: { baseUrl: 'http://127.0.0.1:9/v1' } })
    const created = await call(backend, 'POST', '/api/v1/offline/jobs', g3Body(exampleConfig(task.url)))
    const { status } = await untilEnd(backend, created.json.job_id as string)
    expect(status).toMatchObject({
      status: 'failed',
      error_code: 'TASKAPP_ERR_JOBS_REFLECTION_FAILED',
      baseline_reward: 0,
    })
    expect(status.error).toContain('http://127.0.0.1:9/v1/chat/completions could not be reached')
  })
})

describe('older create generations', { timeout: 60_000 }, () => {
  it('G2 POST /api/jobs/gepa and G1 POST /api/prompt-learning/online/jobs run the same search', async () => {
    const task = await serveExampleTaskApp()
    await using local = await backendWithModel()
    const { backend } = local
    const pl = exampleConfig(task.url, { population: { num_generations: 1, children_per_generation: 1 } })
    const g2 = await call(backend, 'POST', '/api/jobs/gepa', {
      algorithm: 'gepa',
      config_body: { prompt_learning: pl },
      overrides: {},
      metadata: {},
      auto_start: true,
    })
    const g1 = await call(
      backend,
      'POST',
      '/api/prompt-learning/online/jobs',
      { algorithm: 'gepa', config_body: { prompt_learning: pl }, auto_start: true },
      { 'x-api-key': BACKEND_KEY },
    )
    for (const created of [g2, g1]) {
      expect(created.status).toBe(200)
      expect(created.json.id).toBe(created.json.job_id)
      const { status } = await untilEnd(backend, created.json.job_id as string)
      expect(status.status).toBe('succeeded')
      for (const path of [
        `/api/jobs/${status.job_id}`,
        `/api/prompt-learning/online/jobs/${status.job_id}`,
        `/api/policy-optimization/online/jobs/${status.job_id}`,
      ]) {
        expect((await call(backend, 'GET', path, undefined, AUTH)).json.status).toBe('succeeded')
      }
    }
  })
})
