/**
 * Server-side bounds on what a caller may ask: `safety.max_time_s` is capped by
 * `limits.maxRolloutTimeS` (so an oversized value can no longer overflow Node's timer and time a
 * rollout out at once), and `/task_info` parses every seed and refuses more than
 * `limits.maxTaskInfoSeeds`.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { describe, expect, onTestFinished, test } from 'vitest'
import { createTaskApp, isTaskServerError } from './index'
import type { RolloutContext, RolloutRequest, TaskAppConfig, TaskAppLimits } from './index'
import { AUTH, inject, postRollout, testConfig } from './test-helpers'

function makeApp(overrides: Partial<TaskAppConfig> = {}) {
  const app = createTaskApp(testConfig(overrides))
  onTestFinished(() => app.lifecycle.close({ graceMs: 1000 }))
  return app
}

/** A handler that works for 300 ms (honouring its signal) and records the budget it was given. */
function workFor300ms() {
  const seen: number[] = []
  const rollout = async (request: RolloutRequest, ctx: RolloutContext) => {
    seen.push(request.safety.max_time_s)
    await delay(300, undefined, { signal: ctx.signal })
    return { trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: 1 } }
  }
  return { rollout, seen }
}

describe('safety.max_time_s and limits.maxRolloutTimeS', () => {
  test.each([
    ['2147484 (one past the largest timer)', 2_147_484],
    ['1e300', 1e300],
    ['Number.MAX_VALUE', Number.MAX_VALUE],
  ])('max_time_s %s on a 300 ms rollout: 200, clamped to the 3600 s cap', async (_name, maxTime) => {
    const h = workFor300ms()
    const app = makeApp({ rollout: h.rollout })
    const res = await postRollout(app, { body: { safety: { max_time_s: maxTime } } })
    expect(res.status, res.text).toBe(200)
    expect(res.json().reward_info.outcome_reward).toBe(1)
    expect(h.seen).toEqual([3600])
  })

  test('the same in an async job: it succeeds instead of failing with rollout_timeout', async () => {
    const h = workFor300ms()
    const app = makeApp({ rollout: h.rollout })
    const started = await postRollout(app, { async: true, body: { safety: { max_time_s: 1e300 } } })
    expect(started.status).toBe(202)
    await expect
      .poll(
        async () =>
          (await inject(app, { url: started.json().status_url as string, headers: AUTH })).json().status,
        { timeout: 10_000, interval: 20 },
      )
      .toBe('succeeded')
  })

  test('a request asking more than the cap is clamped: the rollout times out at the cap', async () => {
    const seen: number[] = []
    const app = makeApp({
      limits: { maxRolloutTimeS: 0.05 },
      rollout: (request: RolloutRequest, ctx: RolloutContext) => {
        seen.push(request.safety.max_time_s)
        // Only an abort ends this rollout.
        return new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })
        })
      },
    })
    const res = await postRollout(app, { body: { safety: { max_time_s: 3600 } } })
    expect(res.status).toBe(504)
    expect(res.json().detail.error).toMatchObject({
      code: 'rollout_timeout',
      message: 'The rollout ran longer than safety.max_time_s (0.05 s) and was aborted.',
    })
    expect(seen).toEqual([0.05])
  })

  test('values within the cap, and the default, are kept; the default is clamped too', async () => {
    const seen: number[] = []
    const rollout = (request: RolloutRequest) => {
      seen.push(request.safety.max_time_s)
      return { trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: 1 } }
    }
    const app = makeApp({ rollout })
    expect((await postRollout(app, { body: { safety: { max_time_s: 12.5 } } })).status).toBe(200)
    expect((await postRollout(app, { body: { safety: null } })).status).toBe(200)
    const capped = makeApp({ rollout, limits: { maxRolloutTimeS: 60 } })
    expect((await postRollout(capped, { body: { safety: {} } })).status).toBe(200)
    expect(seen).toEqual([12.5, 3600, 60])
  })

  test.each([
    ['0', '0'],
    ['-5', '-5'],
    ['1e400 (Infinity once parsed)', '1e400'],
    ['-1e400', '-1e400'],
    ['"NaN"', '"NaN"'],
    ['"Infinity"', '"Infinity"'],
  ])('max_time_s %s: 422 naming safety.max_time_s, the handler never runs', async (_name, raw) => {
    let ran = false
    const app = makeApp({
      rollout: (request) => {
        ran = true
        return { trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: 1 } }
      },
    })
    const res = await inject(app, {
      method: 'POST',
      url: '/rollout',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: `{"trace_correlation_id":"t","env":{},"policy":{},"safety":{"max_time_s":${raw}}}`,
    })
    expect(res.status).toBe(422)
    expect(res.json().detail.error.issues.map((i: { path: string }) => i.path)).toEqual(['safety.max_time_s'])
    expect(ran).toBe(false)
  })
})

describe('GET /task_info seeds and limits.maxTaskInfoSeeds', () => {
  /** `?seed=7&seed=7...`: short values, so 1,800 of them fit in Node's 16 KiB header limit. */
  const seeds = (n: number, name = 'seed') => Array.from({ length: n }, () => `${name}=7`).join('&')

  test('1,800 seeds: 422 naming the cap and the option, the provider is not called', async () => {
    let called = false
    const app = makeApp({
      provideTaskInstances: () => {
        called = true
        return []
      },
    })
    const res = await inject(app, { url: `/task_info?${seeds(1800)}`, headers: AUTH })
    expect(res.status).toBe(422)
    const message =
      'Too many seeds: 1800 (seed and seeds together); at most 1000 per request (limits.maxTaskInfoSeeds). Ask in batches.'
    expect(res.json().detail.error).toEqual({
      code: 'invalid_request',
      message,
      issues: [{ path: 'query.seed', message }],
    })
    expect(called).toBe(false)
  })

  test('1,000 seeds: 200 with 1,000 items', async () => {
    const app = makeApp()
    const res = await inject(app, { url: `/task_info?${seeds(1000)}`, headers: AUTH })
    expect(res.status).toBe(200)
    expect(res.json()).toHaveLength(1000)
  })

  test('seed and seeds count together; the cap is configurable', async () => {
    const app = makeApp({ limits: { maxTaskInfoSeeds: 3 } })
    const over = await inject(app, { url: `/task_info?${seeds(2)}&${seeds(2, 'seeds')}`, headers: AUTH })
    expect([over.status, over.json().detail.error.message]).toEqual([
      422,
      'Too many seeds: 4 (seed and seeds together); at most 3 per request (limits.maxTaskInfoSeeds). Ask in batches.',
    ])
    const ok = await inject(app, { url: `/task_info?seed=1&seeds=2&seeds=3`, headers: AUTH })
    expect(ok.status).toBe(200)
    expect(ok.json().map((t: { task_metadata: { seed: number } }) => t.task_metadata.seed)).toEqual([1, 2, 3])
  })

  test('a bad seed past the 1,000th pair is still found (every pair is parsed)', async () => {
    const app = makeApp({ limits: { maxTaskInfoSeeds: 5000 } })
    const res = await inject(app, { url: `/task_info?${seeds(1200)}&seeds=x`, headers: AUTH })
    expect(res.status).toBe(422)
    expect(res.json().detail.error.issues).toEqual([
      { path: 'query.seeds.0', message: 'expected an integer seed' },
    ])
  })
})

describe('config checks of the new limits', () => {
  test.each<[string, TaskAppLimits, string]>([
    ['maxRolloutTimeS 0', { maxRolloutTimeS: 0 }, 'limits.maxRolloutTimeS'],
    ['maxRolloutTimeS NaN', { maxRolloutTimeS: Number.NaN }, 'limits.maxRolloutTimeS'],
    ['maxRolloutTimeS Infinity', { maxRolloutTimeS: Number.POSITIVE_INFINITY }, 'limits.maxRolloutTimeS'],
    ['maxRolloutTimeS past the timer range', { maxRolloutTimeS: 2_147_484 }, 'limits.maxRolloutTimeS'],
    ['maxJobsPerOwner 0', { maxJobsPerOwner: 0 }, 'limits.maxJobsPerOwner'],
    ['maxJobsPerOwner 1.5', { maxJobsPerOwner: 1.5 }, 'limits.maxJobsPerOwner'],
    ['maxTaskInfoSeeds 0', { maxTaskInfoSeeds: 0 }, 'limits.maxTaskInfoSeeds'],
    ['maxTaskInfoSeeds "10"', { maxTaskInfoSeeds: '10' as unknown as number }, 'limits.maxTaskInfoSeeds'],
  ])('%s: TASKAPP_ERR_INVALID_CONFIG naming the option', (_name, limits, option) => {
    let err: unknown
    try {
      createTaskApp(testConfig({ limits }))
    } catch (e) {
      err = e
    }
    expect(isTaskServerError(err, 'TASKAPP_ERR_INVALID_CONFIG')).toBe(true)
    expect((err as Error).message).toContain(option)
  })

  test('the largest values are accepted', async () => {
    const app = createTaskApp(
      testConfig({
        limits: {
          maxRolloutTimeS: 2_147_483,
          maxJobsPerOwner: Number.POSITIVE_INFINITY,
          maxTaskInfoSeeds: 100_000,
        },
      }),
    )
    await app.lifecycle.close()
  })
})
