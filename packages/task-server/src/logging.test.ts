/**
 * What the task server logs: a DEBUG line per request and per rollout, the thrown error itself
 * (with its stack) at ERROR, the running count at INFO; and nothing built when DEBUG is off.
 */
import { describe, expect, onTestFinished, test } from 'vitest'
import type { Logger } from '@taskapp/core'
import { deferred, recordingLogger, type LogRecord } from '@taskapp/test-utils'
import { createTaskApp } from './index'
import type { TaskAppConfig, TaskServerError } from './index'
import { AUTH, inject, postRollout, testConfig } from './test-helpers'

function makeApp(overrides: Partial<TaskAppConfig> = {}) {
  const app = createTaskApp(testConfig(overrides))
  onTestFinished(() => app.lifecycle.close({ graceMs: 500 }).catch(() => {}))
  return app
}

const byMsg = (records: readonly LogRecord[], msg: string) => records.filter((r) => r.msg === msg)

/** A handler answering `reward` from the request's `env.seed`: 3 → 0.3, and throwing for seed 13. */
const seededRollout: TaskAppConfig['rollout'] = (request) => {
  const seed = Number(request.env.seed)
  if (seed === 13) throw new TypeError('unlucky seed')
  return { trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: seed / 10 } }
}

describe('DEBUG: one line per request and per rollout', () => {
  test('method, path without the query, status, ms and the request id (the caller’s when sane)', async () => {
    const logger = recordingLogger()
    const app = makeApp({ logger })
    await app.lifecycle.ready()
    const res = await inject(app, {
      method: 'POST',
      url: '/rollout?mode=sync&token=sk-secret-in-query',
      headers: { ...AUTH, 'x-request-id': 'req-abc.1' },
      body: { trace_correlation_id: 'trace-7', env: { seed: 3 }, policy: {} },
    })
    expect(res.status).toBe(200)
    await expect.poll(() => byMsg(logger.records, 'task-server: request')).toHaveLength(1)
    const [line] = byMsg(logger.records, 'task-server: request')
    expect(line).toMatchObject({
      level: 'debug',
      obj: { method: 'POST', path: '/rollout', status: 200, requestId: 'req-abc.1', ms: expect.any(Number) },
    })
    expect(JSON.stringify(logger.records)).not.toContain('sk-secret-in-query')
    expect(byMsg(logger.records, 'task-server: rollout')).toEqual([
      {
        level: 'debug',
        msg: 'task-server: rollout',
        obj: {
          requestId: 'req-abc.1',
          trace_correlation_id: 'trace-7',
          mode: 'sync',
          status: 'completed',
          reward: 1,
          ms: expect.any(Number),
        },
      },
    ])
  })

  test('a generated request id when none (or an unsafe one) is sent; 404s and 401s get their line', async () => {
    const logger = recordingLogger()
    const app = makeApp({ logger })
    await inject(app, { url: '/nowhere', headers: { ...AUTH, 'x-request-id': 'bad id with spaces' } })
    await inject(app, { url: '/info' })
    await expect.poll(() => byMsg(logger.records, 'task-server: request')).toHaveLength(2)
    const [missing, unauthorised] = byMsg(logger.records, 'task-server: request').map((r) => r.obj)
    expect(missing).toMatchObject({ method: 'GET', path: '/nowhere', status: 404 })
    expect(missing?.requestId).toMatch(/^[0-9a-f-]{36}$/)
    expect(unauthorised).toMatchObject({ path: '/info', status: 400 })
  })

  test('an async rollout: the 202 request line, then the rollout line with its reward', async () => {
    const logger = recordingLogger()
    const app = makeApp({ logger, rollout: seededRollout })
    const res = await postRollout(app, { async: true, body: { env: { seed: 5 } } })
    expect(res.status).toBe(202)
    await expect.poll(() => byMsg(logger.records, 'task-server: rollout')).toHaveLength(1)
    expect(byMsg(logger.records, 'task-server: rollout')[0]?.obj).toMatchObject({
      mode: 'async',
      status: 'completed',
      reward: 0.5,
      requestId: res.headers['x-request-id'],
    })
    expect(byMsg(logger.records, 'task-server: request')[0]?.obj).toMatchObject({ status: 202 })
  })

  test('a caller that leaves before the answer is logged with status 499', async () => {
    const logger = recordingLogger()
    const started = deferred<void>()
    const app = makeApp({
      logger,
      rollout: async (request, ctx) => {
        started.resolve()
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))
        return { trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: 0 } }
      },
    })
    const leave = new AbortController()
    const gone = inject(app, {
      method: 'POST',
      url: '/rollout',
      headers: AUTH,
      body: { trace_correlation_id: 't-gone', env: {}, policy: {} },
      signal: leave.signal,
    }).catch(() => undefined)
    await started.promise
    leave.abort()
    await gone
    await expect
      .poll(() => byMsg(logger.records, 'task-server: request').map((r) => r.obj.status))
      .toContain(499)
    await expect
      .poll(() => byMsg(logger.records, 'task-server: rollout').map((r) => r.obj.status))
      .toContain('cancelled')
  })
})

describe('ERROR: a rollout that throws', () => {
  test('is logged with the thrown Error itself (stack included), its error id and request id', async () => {
    const logger = recordingLogger()
    const app = makeApp({ logger, rollout: seededRollout })
    const res = await postRollout(app, { body: { env: { seed: 13 } } })
    expect(res.status).toBe(500)
    const [record] = logger.records.filter((r) => r.level === 'error')
    expect(record?.msg).toBe('task-server: the rollout handler threw')
    const err = record?.obj.err as Error
    expect(err).toBeInstanceOf(TypeError)
    expect(err.stack).toMatch(/seededRollout .*logging\.test\.ts:\d+/)
    expect(record?.obj).toMatchObject({
      errorId: res.json().detail.error.error_id,
      requestId: res.headers['x-request-id'],
      trace_correlation_id: 'trace-1',
    })
    expect(byMsg(logger.records, 'task-server: rollout')[0]?.obj).toMatchObject({
      status: 'failed',
      code: 'rollout_failed',
    })
  })
})

describe('DEBUG off', () => {
  test('no request or rollout record is built; the level is asked, nothing else', async () => {
    const asked: string[] = []
    const records: string[] = []
    const logger: Logger = {
      isLevelEnabled: (level) => {
        asked.push(level)
        return level !== 'debug'
      },
      debug: (_obj, msg) => records.push(`debug ${msg}`),
      info: (_obj, msg) => records.push(`info ${msg}`),
      warn: (_obj, msg) => records.push(`warn ${msg}`),
      error: (_obj, msg) => records.push(`error ${msg}`),
    }
    const app = makeApp({ logger, statsLogIntervalMs: 60_000 })
    expect((await postRollout(app)).status).toBe(200)
    expect((await postRollout(app)).status).toBe(200)
    expect(records).toEqual(['info task-server: rollouts']) // the first summary; the next is 60 s away
    expect(asked).toContain('debug')
  })
})

describe('the running count', () => {
  test('app.stats(): rollouts, completed, failed, cancelled and the mean reward', async () => {
    const app = makeApp({ rollout: seededRollout })
    expect(app.stats()).toEqual({ rollouts: 0, completed: 0, failed: 0, cancelled: 0, meanReward: undefined })
    for (const seed of [2, 4, 13]) await postRollout(app, { body: { env: { seed } } })
    await postRollout(app, { body: { trace_correlation_id: 5 } }) // invalid request: no rollout
    expect(app.stats()).toEqual({
      rollouts: 3,
      completed: 2,
      failed: 1,
      cancelled: 0,
      meanReward: expect.closeTo(0.3, 10),
    })
  })

  test('an invalid response and a timeout count as failures', async () => {
    const app = makeApp({
      rollout: (request) => {
        if (request.env.seed === 1) return { reward_info: {} } as never
        return new Promise(() => {}) // never answers: max_time_s ends it
      },
    })
    await postRollout(app, { body: { env: { seed: 1 } } })
    const timedOut = await postRollout(app, { body: { env: { seed: 2 }, safety: { max_time_s: 0.05 } } })
    expect(timedOut.status).toBe(504)
    expect(app.stats()).toMatchObject({ rollouts: 2, completed: 0, failed: 2, meanReward: undefined })
  })

  test('INFO: a summary at once, then at most one per statsLogIntervalMs, the last one trailing', async () => {
    const logger = recordingLogger()
    const intervalMs = 200
    const app = makeApp({ logger, rollout: seededRollout, statsLogIntervalMs: intervalMs })
    const started = performance.now()
    await postRollout(app, { body: { env: { seed: 10 } } })
    expect(byMsg(logger.records, 'task-server: rollouts').map((r) => r.obj)).toEqual([
      { rollouts: 1, completed: 1, failed: 0, cancelled: 0, meanReward: 1 },
    ])
    for (let i = 0; i < 20; i++) await postRollout(app, { body: { env: { seed: i % 2 === 0 ? 0 : 13 } } })
    // The burst's last counts come in a trailing summary once the interval is up.
    await expect
      .poll(() => byMsg(logger.records, 'task-server: rollouts').at(-1)?.obj, { timeout: 5_000 })
      .toEqual({ rollouts: 21, completed: 11, failed: 10, cancelled: 0, meanReward: 0.0909 })
    const elapsed = performance.now() - started
    const summaries = byMsg(logger.records, 'task-server: rollouts')
    expect(summaries.length).toBeLessThanOrEqual(2 + Math.floor(elapsed / intervalMs))
    expect(summaries.every((r) => r.level === 'info')).toBe(true)
  })

  test('close() stops the timer and logs the news since the last summary', async () => {
    const logger = recordingLogger()
    const app = makeApp({ logger, statsLogIntervalMs: 3_600_000 })
    await postRollout(app)
    await postRollout(app)
    expect(byMsg(logger.records, 'task-server: rollouts')).toHaveLength(1) // the second waits an hour
    await app.lifecycle.close()
    expect(byMsg(logger.records, 'task-server: rollouts').map((r) => r.obj.rollouts)).toEqual([1, 2])
  })

  test('statsLogIntervalMs must be a positive number', () => {
    for (const bad of [0, -1, Number.NaN, Infinity, '10'] as never[]) {
      expect(() => createTaskApp(testConfig({ statsLogIntervalMs: bad }))).toThrow(
        expect.objectContaining({
          code: 'TASKAPP_ERR_INVALID_CONFIG',
          message: expect.stringContaining('statsLogIntervalMs must be a positive number'),
        }) as TaskServerError,
      )
    }
  })
})
