/**
 * The JobStore contract, one table run against the memory store and the Redis store (a real
 * redis-server from test-utils, a fresh key prefix per test).
 */
import { afterAll, beforeAll, describe, expect, onTestFinished, test, vi } from 'vitest'
import { startRedisServer, type TestRedisServer } from '@taskapp/test-utils'
import { createMemoryJobStore, createRedisJobStore, TaskServerError } from './index'
import type { JobStore, RolloutJob, RolloutJobStatus } from './index'

type Store = Required<Pick<JobStore, 'put' | 'get' | 'requestCancel' | 'onCancel' | 'close'>>
type Limits = { maxJobs?: number; ttlMs?: number }

let redis: TestRedisServer
beforeAll(async () => {
  redis = await startRedisServer()
})
afterAll(() => redis.close())

const kinds: [string, (limits: Limits) => Promise<Store>][] = [
  ['memory', async (limits) => createMemoryJobStore(limits)],
  ['redis', (limits) => createRedisJobStore({ redis: redis.url, prefix: redis.prefix(), ...limits })],
]

function job(id: string, status: RolloutJobStatus, owner?: string): RolloutJob {
  return { id, status, traceCorrelationId: `t-${id}`, createdAt: 1, ...(owner ? { owner } : {}) }
}

/** The cancellation the tests ask for, and the record it makes of `current`. */
const cancellation = { finishedAt: 2, error: { code: 'rollout_cancelled', message: 'cancelled by the test' } }
const cancelled = (current: RolloutJob): RolloutJob => ({ ...current, status: 'cancelled', ...cancellation })

describe.each(kinds)('JobStore contract: %s store', (_kind, make) => {
  async function store(limits: Limits = {}): Promise<Store> {
    const s = await make(limits)
    onTestFinished(() => s.close())
    return s
  }

  test('puts, replaces and gets a record with every field', async () => {
    const s = await store()
    await s.put(job('a', 'pending', 'key:0123'))
    const full: RolloutJob = {
      ...job('a', 'succeeded', 'key:0123'),
      startedAt: 5,
      finishedAt: 9,
      result: { trace_correlation_id: 't-a', reward_info: { outcome_reward: 1 } } as RolloutJob['result'],
    }
    await s.put(full)
    expect(await s.get('a')).toEqual(full)
    expect(await s.get('missing')).toBeUndefined()
  })

  test('a final record is kept: later puts of that id do nothing', async () => {
    const s = await store()
    await s.put(job('a', 'cancelled'))
    await s.put(job('a', 'succeeded'))
    await s.put(job('a', 'running'))
    expect((await s.get('a'))?.status).toBe('cancelled')
  })

  test('when full, evicts the oldest finished job, the new job owner’s own first', async () => {
    const s = await store({ maxJobs: 3 })
    await s.put(job('victim-done', 'succeeded', 'key:victim'))
    await s.put(job('churn-1', 'succeeded', 'key:churn'))
    await s.put(job('churn-2', 'succeeded', 'key:churn'))
    await s.put(job('churn-3', 'pending', 'key:churn'))
    expect(await s.get('victim-done')).toBeDefined()
    expect(await s.get('churn-1')).toBeUndefined()
    await s.put(job('newcomer', 'pending', 'key:new'))
    expect(await s.get('victim-done')).toBeUndefined()
    expect(await s.get('churn-2')).toBeDefined()
  })

  test('never evicts a job that is not final: a new job is refused with TASKAPP_ERR_JOB_STORE_FULL', async () => {
    const s = await store({ maxJobs: 2 })
    await s.put(job('a', 'running'))
    await s.put(job('b', 'pending'))
    const err = await (async () => s.put(job('c', 'pending')))().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TaskServerError)
    expect(err).toMatchObject({
      code: 'TASKAPP_ERR_JOB_STORE_FULL',
      message: 'The job store holds 2 running jobs; wait for some to finish or raise maxJobs.',
    })
    expect(await s.get('c')).toBeUndefined()
    // Updating a job already held is always allowed.
    await s.put(job('a', 'succeeded'))
    expect((await s.get('a'))?.status).toBe('succeeded')
  })

  test('finished jobs go after ttlMs; unfinished ones stay', async () => {
    const s = await store({ ttlMs: 500 })
    await s.put(job('running', 'running'))
    await s.put(job('done', 'failed'))
    expect(await s.get('done')).toBeDefined()
    await vi.waitFor(async () => expect(await s.get('done')).toBeUndefined(), { timeout: 5000, interval: 20 })
    expect(await s.get('running')).toBeDefined()
  })

  test('requestCancel: cancels an unfinished job once and tells its watchers', async () => {
    const s = await store()
    await s.put(job('a', 'running', 'key:o'))
    const fired = vi.fn()
    const stop = s.onCancel('a', fired)
    onTestFinished(stop)
    const first = await s.requestCancel('a', cancellation)
    expect(first).toEqual({ job: { ...cancelled(job('a', 'running', 'key:o')) }, changed: true })
    expect(await s.get('a')).toEqual(first?.job)
    await vi.waitFor(() => expect(fired).toHaveBeenCalledTimes(1))
    const again = await s.requestCancel('a', cancellation)
    expect(again).toEqual({ job: first?.job, changed: false })
    expect(await s.requestCancel('missing', cancellation)).toBeUndefined()
  })

  test('requestCancel of a finished job changes nothing', async () => {
    const s = await store()
    await s.put(job('a', 'succeeded'))
    expect(await s.requestCancel('a', cancellation)).toEqual({ job: job('a', 'succeeded'), changed: false })
  })

  test('onCancel of a job already cancelled fires soon after; a stopped watcher never fires', async () => {
    const s = await store()
    await s.put(job('a', 'running'))
    await s.put(job('b', 'running'))
    await s.requestCancel('a', cancellation)
    const late = vi.fn()
    s.onCancel('a', late)
    await vi.waitFor(() => expect(late).toHaveBeenCalledTimes(1))

    const stopped = vi.fn()
    const kept = vi.fn()
    s.onCancel('b', stopped)()
    s.onCancel('b', kept)
    await s.requestCancel('b', cancellation)
    await vi.waitFor(() => expect(kept).toHaveBeenCalledTimes(1))
    expect(stopped).not.toHaveBeenCalled()
  })
})

describe.each(kinds)('JobStore contract under races: %s store', (_kind, make) => {
  async function store(limits: Limits = {}): Promise<Store> {
    const s = await make(limits)
    onTestFinished(() => s.close())
    return s
  }

  test('ten concurrent cancels of one job: exactly one changes it, all answer the same record', async () => {
    const s = await store()
    await s.put(job('a', 'running', 'key:o'))
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => s.requestCancel('a', cancellation)))
    expect(outcomes.filter((o) => o?.changed)).toHaveLength(1)
    const stored = await s.get('a')
    expect(stored).toEqual(cancelled(job('a', 'running', 'key:o')))
    for (const o of outcomes) expect(o?.job).toEqual(stored)
  })

  test('a cancel racing the final put: whichever lands first stays, and the cancel says which', async () => {
    const s = await store()
    const ids = Array.from({ length: 20 }, (_, i) => `r${i}`)
    for (const id of ids) await s.put(job(id, 'running'))
    const outcomes = await Promise.all(
      ids.map(async (id, i) => {
        const done = { ...job(id, 'succeeded'), finishedAt: 3 }
        // Half the puts start first, half the cancels: both orders are exercised.
        const [, outcome] =
          i % 2 === 0
            ? await Promise.all([s.put(done), s.requestCancel(id, cancellation)])
            : (await Promise.all([s.requestCancel(id, cancellation), s.put(done)])).reverse()
        return outcome as Awaited<ReturnType<Store['requestCancel']>>
      }),
    )
    for (const [i, id] of ids.entries()) {
      const stored = await s.get(id)
      const outcome = outcomes[i]
      expect(stored?.status).toBe(outcome?.changed ? 'cancelled' : 'succeeded')
      expect(outcome?.job).toEqual(stored)
      // Later writes of the run never replace the final record.
      await s.put({ ...job(id, 'failed'), finishedAt: 4 })
      expect(await s.get(id)).toEqual(stored)
    }
  })

  test('a record rewritten while it is cancelled is still cancelled at once (no retries)', async () => {
    const s = await store()
    await s.put(job('a', 'pending'))
    const writes = Array.from({ length: 30 }, (_, i) =>
      Promise.resolve(s.put({ ...job('a', 'running'), startedAt: i })),
    )
    const outcome = await s.requestCancel('a', cancellation)
    await Promise.all(writes)
    expect(outcome?.changed).toBe(true)
    expect(await s.get('a')).toMatchObject({ status: 'cancelled', ...cancellation })
  })
})
