import { setTimeout as delay } from 'node:timers/promises'
import { describe, expect, test } from 'vitest'
import type { RolloutCompleteEvent, RolloutRequest, TaskAppConfig } from '../config'
import { TaskServerError } from '../errors'
import { deferred, recordingLogger } from '@taskapp/test-utils'
import { createExecutor } from './execute'
import { abortRun, createRunRegistry, isSettled } from './run'
import { createRolloutStats } from './stats'
import { silentLogger } from '../logger'

function request(overrides: Partial<RolloutRequest> = {}): RolloutRequest {
  return {
    trace_correlation_id: 'trace-1',
    env: { config: {} },
    policy: { config: {}, output_mode: 'tool_calls' },
    on_done: 'reset',
    safety: { max_time_s: 3600 },
    ...overrides,
  }
}

const answer = (r: RolloutRequest, reward = 1) => ({
  trace_correlation_id: r.trace_correlation_id,
  reward_info: { outcome_reward: reward },
})

function setup(rollout: TaskAppConfig['rollout']) {
  const runs = createRunRegistry()
  const events: RolloutCompleteEvent[] = []
  const logger = recordingLogger()
  const stats = createRolloutStats(silentLogger, 60_000)
  const execute = createExecutor({ rollout, logger, runs, stats, onComplete: (e) => events.push(e) })
  return { runs, events, logger, execute, stats }
}

describe('createExecutor (no HTTP)', () => {
  test('a max_time_s past the timer range (not clamped by the route) does not time out at once', async () => {
    const { runs, execute } = setup(async (r, ctx) => {
      await delay(50, undefined, { signal: ctx.signal }) // longer than the 1 ms Node would give
      return answer(r)
    })
    const run = runs.create('async')
    const outcome = await execute(run, request({ safety: { max_time_s: 1e300 } }), 'req-1', {})
    expect(outcome).toMatchObject({ ok: true })
  })

  test('a handler that answers synchronously: the outcome comes back directly, untracked', () => {
    const { runs, events, execute } = setup((r) => answer(r, 0.5))
    const run = runs.create('sync')
    const outcome = execute(run, request(), 'req-1', {})
    expect(outcome).not.toBeInstanceOf(Promise)
    expect(outcome).toMatchObject({
      ok: true,
      response: { reward_info: { outcome_reward: 0.5, outcome_objectives: { reward: 0.5 } } },
    })
    expect(run.handlerDone).toBe(true)
    expect(run.controller).toBeUndefined() // no AbortSignal unless the handler asks for one
    expect(runs.inFlight()).toEqual([])
    expect(events).toEqual([expect.objectContaining({ requestId: 'req-1', response: expect.any(Object) })])
  })

  test('an async handler: a promise of the outcome; the run is tracked while it runs', async () => {
    const release = deferred<void>()
    const { runs, execute } = setup(async (r, ctx) => {
      expect(ctx.mode).toBe('async')
      await release.promise
      return answer(r)
    })
    const run = runs.create('async')
    const pending = execute(run, request(), 'req-1', {})
    expect(pending).toBeInstanceOf(Promise)
    expect(runs.get(run.id)).toBe(run)
    release.resolve()
    expect(await pending).toMatchObject({ ok: true })
    runs.finish(run, 'completed')
    expect(isSettled(run)).toBe(true)
    expect(runs.get(run.id)).toBeUndefined()
  })

  test('a handler that throws: rollout_failed with an error id; the error only in the log and the event', () => {
    const boom = new Error('secret detail')
    const { runs, events, logger, execute } = setup(() => {
      throw boom
    })
    const outcome = execute(runs.create('sync'), request(), 'req-1', {})
    expect(outcome).toMatchObject({ ok: false, status: 500, code: 'rollout_failed', jobStatus: 'failed' })
    if (outcome instanceof Promise || outcome.ok) throw new Error('expected a failure')
    expect(outcome.message).not.toContain('secret detail')
    expect(outcome.error).toMatchObject({ code: 'TASKAPP_ERR_ROLLOUT_FAILED', cause: boom })
    expect(logger.records.find((l) => l.level === 'error')?.obj.errorId).toBe(outcome.errorId)
    expect(events[0]?.error?.code).toBe('TASKAPP_ERR_ROLLOUT_FAILED')
  })

  test('an invalid response: invalid_rollout_response naming the fields', () => {
    const { runs, execute } = setup(() => ({ trace_correlation_id: 'trace-1' }) as never)
    expect(execute(runs.create('sync'), request(), 'req-1', {})).toMatchObject({
      ok: false,
      status: 500,
      code: 'invalid_rollout_response',
      extra: { issues: [expect.objectContaining({ path: 'reward_info' })] },
    })
  })

  test('an abort settles the outcome at once, even when the handler ignores the signal', async () => {
    const never = deferred<void>()
    const { runs, execute } = setup(async (r) => {
      await never.promise
      return answer(r)
    })
    const run = runs.create('async')
    const pending = execute(run, request(), 'req-1', {})
    const reason = new TaskServerError('TASKAPP_ERR_ROLLOUT_CANCELLED', 'cancelled by the test')
    abortRun(run, reason)
    expect(await pending).toMatchObject({ ok: false, status: 503, code: 'rollout_cancelled', error: reason })
    expect(run.handlerDone).toBe(false) // the handler is still out there; close() waits for it
    never.resolve()
  })

  test('safety.max_time_s aborts the run: rollout_timeout, and the handler signal fires', async () => {
    const seen = deferred<unknown>()
    const { runs, execute } = setup(
      (_r, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            seen.resolve(ctx.signal.reason)
            reject(ctx.signal.reason as Error)
          })
        }),
    )
    const outcome = await execute(runs.create('sync'), request({ safety: { max_time_s: 0.02 } }), 'req-1', {})
    expect(outcome).toMatchObject({ ok: false, status: 504, code: 'rollout_timeout', jobStatus: 'failed' })
    expect(await seen.promise).toMatchObject({ code: 'TASKAPP_ERR_ROLLOUT_TIMEOUT' })
  })

  test('a run aborted before it starts never calls the handler', () => {
    let called = false
    const { runs, execute } = setup((r) => {
      called = true
      return answer(r)
    })
    const run = runs.create('async')
    abortRun(run, new TaskServerError('TASKAPP_ERR_ROLLOUT_CANCELLED', 'closing'))
    expect(execute(run, request(), 'req-1', {})).toMatchObject({ ok: false, code: 'rollout_cancelled' })
    expect(called).toBe(false)
  })
})
