/**
 * What only the Redis job store has: corrupt records, a cap shared by concurrent writers, the
 * cancel path when pub/sub drops, the connections it makes and closes, and its options. A real
 * redis-server from test-utils, a fresh key prefix per test.
 */
import { afterAll, beforeAll, describe, expect, onTestFinished, test, vi } from 'vitest'
import { recordingLogger, startRedisServer, type TestRedisServer } from '@taskapp/test-utils'
import { createRedisJobStore } from './index'
import type { RedisJobStoreOptions, RolloutJob } from './index'
import { loadIoredis } from './redis/load'

let redis: TestRedisServer
beforeAll(async () => {
  redis = await startRedisServer()
})
afterAll(() => redis.close())

const job = (id: string, status: RolloutJob['status'] = 'running'): RolloutJob => ({
  id,
  status,
  traceCorrelationId: 't',
  createdAt: 1,
})

const cancellation = { finishedAt: 2, error: { code: 'rollout_cancelled', message: 'cancelled by the test' } }

async function store(options: Partial<RedisJobStoreOptions> = {}) {
  const s = await createRedisJobStore({ redis: redis.url, prefix: redis.prefix(), ...options })
  onTestFinished(() => s.close())
  return s
}

/** Counts the connections the server has open (a probe that is one of them, the same each call). */
function connectionCounter() {
  const probe = redis.client()
  onTestFinished(() => probe.disconnect())
  return async () => ((await probe.client('LIST')) as string).trim().split('\n').length
}

describe('createRedisJobStore', () => {
  test.each([
    ['not JSON', '{"id":'],
    ['a wrong shape', JSON.stringify({ id: 'x', status: 'exploded', traceCorrelationId: 't', createdAt: 1 })],
    ['another job', JSON.stringify(job('other'))],
  ])(
    'a corrupt record (%s) reads as missing and is logged as TASKAPP_ERR_JOB_RECORD_CORRUPT',
    async (_what, raw) => {
      const logger = recordingLogger()
      const s = await store({ logger })
      await redis.client().hset(`${s.prefix}job:x`, 'status', 'running', 'job', raw)
      expect(await s.get('x')).toBeUndefined()
      expect(await s.requestCancel('x', cancellation)).toBeUndefined()
      const warned = logger.records.find((r) => r.msg === 'task-server: corrupt job record in Redis')
      expect(warned?.obj).toMatchObject({ jobId: 'x', err: { code: 'TASKAPP_ERR_JOB_RECORD_CORRUPT' } })
    },
  )

  test('the cap holds under concurrent writers: 5 of 12 new jobs from three stores are stored', async () => {
    const prefix = redis.prefix()
    const stores = await Promise.all([1, 2, 3].map(() => store({ prefix, maxJobs: 5 })))
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => stores[i % 3]!.put(job(`j${i}`))),
    )
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5)
    const refused = results.filter((r) => r.status === 'rejected')
    expect(refused.map((r) => (r.reason as { code: string }).code)).toEqual(
      Array(7).fill('TASKAPP_ERR_JOB_STORE_FULL'),
    )
  })

  test('a cancel whose message was lost is seen when the subscriber reconnects', async () => {
    const s = await store({ cancelCheckIntervalMs: 0 })
    await s.put(job('a'))
    const fired = vi.fn()
    s.onCancel('a', fired)
    // Marked cancelled without a message (as if published while the subscriber was down)...
    await redis.client().hset(`${s.prefix}job:a`, 'status', 'cancelled')
    // ...then pub/sub drops: the store subscribes again and re-reads what it watches.
    await redis.client().client('KILL', 'TYPE', 'pubsub')
    await vi.waitFor(() => expect(fired).toHaveBeenCalledTimes(1), { timeout: 5000 })
  })

  test('with pub/sub silent, the periodic check still sees a cancel', async () => {
    const s = await store({ cancelCheckIntervalMs: 50 })
    await s.put(job('a'))
    const fired = vi.fn()
    s.onCancel('a', fired)
    await redis.client().hset(`${s.prefix}job:a`, 'status', 'cancelled')
    await vi.waitFor(() => expect(fired).toHaveBeenCalledTimes(1), { timeout: 5000 })
  })

  test('after a Redis restart the store works again (scripts reloaded, subscriber back)', async () => {
    const prefix = redis.prefix()
    const a = await store({ prefix })
    const b = await store({ prefix })
    await a.put(job('before', 'succeeded'))
    await redis.restart()
    expect(await a.get('before')).toBeUndefined()
    await a.put(job('after'))
    const fired = vi.fn()
    a.onCancel('after', fired)
    await vi.waitFor(async () => expect((await b.requestCancel('after', cancellation))?.changed).toBe(true), {
      timeout: 10_000,
    })
    await vi.waitFor(() => expect(fired).toHaveBeenCalledTimes(1), { timeout: 10_000 })
  })

  test('close() ends both connections it made; with a caller client, only its own', async () => {
    const connections = connectionCounter()
    const base = await connections()
    const owned = await createRedisJobStore({ redis: redis.url, prefix: redis.prefix() })
    expect(await connections()).toBe(base + 2)
    await owned.close()
    await owned.close() // idempotent
    await vi.waitFor(async () => expect(await connections()).toBe(base))

    const mine = redis.client()
    await mine.ping()
    const shared = await createRedisJobStore({ redis: mine, prefix: redis.prefix() })
    await shared.put(job('a'))
    expect(await connections()).toBe(base + 2)
    await shared.close()
    await vi.waitFor(async () => expect(await connections()).toBe(base + 1))
    expect(mine.status).toBe('ready')
    mine.disconnect()
  })

  test('Redis not answering at the URL → TASKAPP_ERR_JOB_STORE_UNAVAILABLE', async () => {
    const err = await createRedisJobStore({ redis: `unix://${redis.socketPath}.missing` }).catch(
      (e: unknown) => e,
    )
    expect(err).toMatchObject({
      code: 'TASKAPP_ERR_JOB_STORE_UNAVAILABLE',
      message: expect.stringContaining('check that Redis is running'),
    })
  })

  test.each([
    [{ redis: 'http://127.0.0.1:6379' }, 'redis must be'],
    [{ redis: {} }, 'redis must be'],
    [{ prefix: '' }, 'prefix'],
    [{ maxJobs: 0 }, 'maxJobs'],
    [{ ttlMs: -1 }, 'ttlMs'],
    [{ maxRunningMs: 0 }, 'maxRunningMs'],
    [{ cancelCheckIntervalMs: -5 }, 'cancelCheckIntervalMs'],
  ])('rejects %o with TASKAPP_ERR_INVALID_CONFIG', async (bad, field) => {
    const err = await createRedisJobStore({ redis: redis.url, ...bad } as RedisJobStoreOptions).catch(
      (e: unknown) => e,
    )
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_INVALID_CONFIG', message: expect.stringContaining(field) })
  })

  test('ioredis not installed → TASKAPP_ERR_IOREDIS_MISSING naming the package', async () => {
    // A double: ioredis is installed here, so the loader fails the way Node does without it.
    const missing = Object.assign(new Error("Cannot find package 'ioredis' imported from /app/x.js"), {
      code: 'ERR_MODULE_NOT_FOUND',
    })
    const err = await loadIoredis(() => Promise.reject(missing)).catch((e: unknown) => e)
    expect(err).toMatchObject({
      code: 'TASKAPP_ERR_IOREDIS_MISSING',
      message: expect.stringContaining('npm install ioredis'),
      cause: missing,
    })
    await expect(loadIoredis()).resolves.toBeTypeOf('function')
  })
})
