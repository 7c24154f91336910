/**
 * A stalled Redis (its real redis-server child stopped with SIGSTOP, resumed with SIGCONT) and a
 * closed store: the routes answer 503 `job_store_unavailable` within a deadline instead of
 * hanging, close() returns, and a closed store rejects with a typed error without connecting.
 */
import { afterAll, beforeAll, describe, expect, onTestFinished, test, vi } from 'vitest'
import { listenLoopback, startRedisServer, type TestRedisServer } from '@taskapp/test-utils'
import { createRedisJobStore, createTaskApp } from './index'
import type { RedisJobStoreOptions, RolloutJob } from './index'
import { AUTH, rolloutBody, testConfig } from './test-helpers'

let redis: TestRedisServer
let pid: number
beforeAll(async () => {
  redis = await startRedisServer()
  pid = Number(/process_id:(\d+)/.exec(await redis.client().info('server'))?.[1])
})
afterAll(() => redis.close())

/** Stops the redis-server process until the test ends (SIGCONT then, even if the test failed). */
function stallRedis() {
  process.kill(pid, 'SIGSTOP')
  onTestFinished(() => void process.kill(pid, 'SIGCONT'))
}

async function store(options: Partial<RedisJobStoreOptions> = {}) {
  const s = await createRedisJobStore({ redis: redis.url, prefix: redis.prefix(), ...options })
  onTestFinished(() => s.close())
  return s
}

const job: RolloutJob = { id: 'a', status: 'running', traceCorrelationId: 't', createdAt: 1 }
const cancellation = { finishedAt: 2, error: { code: 'rollout_cancelled', message: 'by the test' } }

/** Counts the server's connections (the probe is one of them). */
function connectionCounter() {
  const probe = redis.client()
  onTestFinished(() => probe.disconnect())
  return async () => ((await probe.client('LIST')) as string).trim().split('\n').length
}

describe('a stalled Redis', () => {
  test('GET, DELETE and POST /rollout?mode=async answer 503 job_store_unavailable within the deadline', async () => {
    const jobStore = await store({ commandTimeoutMs: 300 })
    const app = createTaskApp(testConfig({ jobStore }))
    const server = await listenLoopback(app)
    onTestFinished(async () => {
      await server.close()
      await app.lifecycle.close({ graceMs: 200 })
    })
    await app.lifecycle.ready()
    stallRedis()
    const requests = [
      { method: 'GET', path: '/rollouts/some-id' },
      { method: 'DELETE', path: '/rollouts/some-id' },
      { method: 'POST', path: '/rollout?mode=async', body: JSON.stringify(rolloutBody()) },
    ]
    for (const { method, path, body } of requests) {
      const started = performance.now()
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { ...AUTH, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(5000), // a hang fails here, not at the suite timeout
      })
      expect([method, res.status]).toEqual([method, 503])
      expect(res.headers.get('retry-after')).toBe('5')
      expect(await res.json()).toMatchObject({ detail: { error: { code: 'job_store_unavailable' } } })
      expect(performance.now() - started).toBeLessThan(3000)
    }
  })

  test('store calls reject with TASKAPP_ERR_JOB_STORE_UNAVAILABLE; after SIGCONT they work again', async () => {
    const s = await store({ commandTimeoutMs: 200 })
    await s.put(job)
    stallRedis()
    for (const call of [() => s.get('a'), () => s.put(job), () => s.requestCancel('a', cancellation)]) {
      await expect(call()).rejects.toMatchObject({
        code: 'TASKAPP_ERR_JOB_STORE_UNAVAILABLE',
        message: expect.stringContaining('check that Redis is running'),
      })
    }
    process.kill(pid, 'SIGCONT')
    await vi.waitFor(async () => expect(await s.get('a')).toEqual(job), { timeout: 5000 })
  })

  test('close() returns within the deadline, dropping connections QUIT cannot end', async () => {
    const s = await store({ commandTimeoutMs: 200 })
    stallRedis()
    const started = performance.now()
    await s.close()
    expect(performance.now() - started).toBeLessThan(2000)
  })

  test('createRedisJobStore gives up with TASKAPP_ERR_JOB_STORE_UNAVAILABLE', async () => {
    stallRedis()
    const err = await createRedisJobStore({ redis: redis.url, commandTimeoutMs: 200 }).catch(
      (e: unknown) => e,
    )
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_JOB_STORE_UNAVAILABLE' })
  })
})

describe('a closed store', () => {
  test('every call rejects with TASKAPP_ERR_JOB_STORE_CLOSED and opens no connection', async () => {
    const connections = connectionCounter()
    const base = await connections()
    const s = await store()
    await s.close()
    await vi.waitFor(async () => expect(await connections()).toBe(base))
    const closed = { code: 'TASKAPP_ERR_JOB_STORE_CLOSED', message: expect.stringContaining('close()') }
    await expect(s.get('a')).rejects.toMatchObject(closed)
    await expect(s.put(job)).rejects.toMatchObject(closed)
    await expect(s.requestCancel('a', cancellation)).rejects.toMatchObject(closed)
    expect(() => s.onCancel('a', () => {})).toThrow(expect.objectContaining(closed))
    await s.close() // idempotent
    expect(await connections()).toBe(base)
  })

  test('with a caller client never connected: close() works and later calls never connect it', async () => {
    const connections = connectionCounter()
    const base = await connections()
    const mine = redis.client({ lazyConnect: true })
    const s = await createRedisJobStore({ redis: mine, prefix: redis.prefix() })
    await s.close()
    expect(mine.status).toBe('wait')
    await expect(s.get('a')).rejects.toMatchObject({ code: 'TASKAPP_ERR_JOB_STORE_CLOSED' })
    expect(mine.status).toBe('wait')
    await vi.waitFor(async () => expect(await connections()).toBe(base))
  })
})
