import { afterEach, describe, expect, test, vi } from 'vitest'
import { createMemoryJobStore, TaskServerError } from './index'
import type { RolloutJob, RolloutJobStatus } from './index'

function job(id: string, status: RolloutJobStatus): RolloutJob {
  return { id, status, traceCorrelationId: `t-${id}`, createdAt: 0 }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('createMemoryJobStore', () => {
  test('puts, replaces and gets jobs', async () => {
    await using store = createMemoryJobStore()
    store.put(job('a', 'pending'))
    store.put({ ...job('a', 'running'), startedAt: 5 })
    expect(store.get('a')).toMatchObject({ status: 'running', startedAt: 5 })
    expect(store.get('missing')).toBeUndefined()
    expect(store.size).toBe(1)
  })

  test('is bounded: evicts the oldest finished job to make room', async () => {
    await using store = createMemoryJobStore({ maxJobs: 3 })
    store.put(job('running-1', 'running'))
    store.put(job('done-1', 'succeeded'))
    store.put(job('done-2', 'failed'))
    store.put(job('new', 'pending'))
    expect(store.size).toBe(3)
    expect(store.get('done-1')).toBeUndefined()
    expect(store.get('done-2')).toBeDefined()
    expect(store.get('running-1')).toBeDefined()
  })

  test("when full, evicts the oldest finished job of the new job's owner before anyone else's", async () => {
    await using store = createMemoryJobStore({ maxJobs: 3 })
    store.put({ ...job('victim-done', 'succeeded'), owner: 'key:victim' })
    store.put({ ...job('churn-1', 'succeeded'), owner: 'key:churn' })
    store.put({ ...job('churn-2', 'succeeded'), owner: 'key:churn' })
    store.put({ ...job('churn-3', 'pending'), owner: 'key:churn' })
    expect(store.get('victim-done')).toBeDefined()
    expect(store.get('churn-1')).toBeUndefined()
    // A new owner with nothing finished to give up: the oldest finished job overall goes.
    store.put({ ...job('newcomer', 'pending'), owner: 'key:new' })
    expect(store.get('victim-done')).toBeUndefined()
    expect(store.get('churn-2')).toBeDefined()
  })

  test('never evicts a job that is not final: a new job is refused instead', async () => {
    await using store = createMemoryJobStore({ maxJobs: 2 })
    store.put(job('a', 'running'))
    store.put(job('b', 'pending'))
    let err: unknown
    try {
      store.put(job('c', 'pending'))
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(TaskServerError)
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_JOB_STORE_FULL' })
    expect(store.get('a')).toBeDefined()
    expect(store.get('b')).toBeDefined()
    // Updating a job already held is always allowed.
    store.put(job('a', 'succeeded'))
    expect(store.get('a')?.status).toBe('succeeded')
  })

  test('finished jobs are evicted after ttlMs; running ones are not', async () => {
    vi.useFakeTimers()
    await using store = createMemoryJobStore({ ttlMs: 1000 })
    store.put(job('done', 'cancelled'))
    store.put(job('running', 'running'))
    vi.advanceTimersByTime(999)
    expect(store.get('done')).toBeDefined()
    vi.advanceTimersByTime(1)
    expect(store.get('done')).toBeUndefined()
    vi.advanceTimersByTime(10_000_000)
    expect(store.get('running')).toBeDefined()
  })

  test('eviction timers are unref-ed and cleared by close()', async () => {
    vi.useFakeTimers()
    const store = createMemoryJobStore({ ttlMs: 1000 })
    store.put(job('done', 'succeeded'))
    expect(vi.getTimerCount()).toBe(1)
    await store.close()
    expect(vi.getTimerCount()).toBe(0)
    expect(store.size).toBe(0)
  })

  test('eviction timers do not keep the process alive', () => {
    const store = createMemoryJobStore({ ttlMs: 60_000 })
    const spy = vi.spyOn(globalThis, 'setTimeout')
    store.put(job('done', 'succeeded'))
    const timer = spy.mock.results[0]?.value as NodeJS.Timeout
    spy.mockRestore()
    expect(timer.hasRef()).toBe(false)
    void store.close()
  })

  test.each([
    [{ maxJobs: 0 }, 'maxJobs'],
    [{ maxJobs: 1.5 }, 'maxJobs'],
    [{ ttlMs: -1 }, 'ttlMs'],
    [{ ttlMs: Number.POSITIVE_INFINITY }, 'ttlMs'],
  ])('rejects %o', (options, field) => {
    expect(() => createMemoryJobStore(options)).toThrow(
      expect.objectContaining({
        code: 'TASKAPP_ERR_INVALID_CONFIG',
        message: expect.stringContaining(field),
      }),
    )
  })
})
