/**
 * Two task-app replicas on 127.0.0.1 (real sockets), each with its own Redis job store on one real
 * redis-server and the same key prefix (a fresh one per test): a job made on one is read and
 * cancelled through the other.
 */
import { afterAll, beforeAll, describe, expect, onTestFinished, test, vi } from 'vitest'
import {
  deferred,
  listenLoopback,
  recordingLogger,
  startRedisServer,
  type TestRedisServer,
} from '@taskapp/test-utils'
import { createRedisJobStore, createTaskApp } from './index'
import type { RedisJobStoreOptions, RolloutContext, RolloutRequest, TaskAppConfig } from './index'
import { AUTH, KEY, rolloutBody, testConfig } from './test-helpers'

const KEY_B = 'sk-env-test-other-9876543210'
const AUTH_B = { 'x-api-key': KEY_B }

let redis: TestRedisServer
beforeAll(async () => {
  redis = await startRedisServer()
})
afterAll(() => redis.close())

/** A handler whose rollouts wait until released or aborted; records the abort reasons it saw. */
function gated() {
  const release = deferred<void>()
  const started = vi.fn()
  const aborted: unknown[] = []
  const rollout = async (request: RolloutRequest, ctx: RolloutContext) => {
    started()
    await new Promise<void>((resolve, reject) => {
      ctx.signal.addEventListener(
        'abort',
        () => {
          aborted.push(ctx.signal.reason)
          reject(ctx.signal.reason)
        },
        { once: true },
      )
      void release.promise.then(resolve)
    })
    return { trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: 1 } }
  }
  return { rollout, release, started, aborted }
}

/** Two replicas sharing one prefix; each owns its store (closed after its app). */
async function replicas(overrides: Partial<TaskAppConfig>, store: Partial<RedisJobStoreOptions> = {}) {
  const prefix = redis.prefix()
  const one = async () => {
    const jobStore = await createRedisJobStore({ redis: redis.url, prefix, ...store })
    const app = createTaskApp(testConfig({ apiKeys: [KEY, KEY_B], jobStore, ...overrides }))
    const server = await listenLoopback(app)
    onTestFinished(async () => {
      await server.close()
      await app.lifecycle.close({ graceMs: 1000 })
      await jobStore.close()
    })
    await app.lifecycle.ready()
    return { app, url: server.url, jobStore }
  }
  return [await one(), await one()] as const
}

/** The fields of the answers these tests read. */
interface Body {
  id: string
  status: string
  result?: unknown
  detail: { error: { code: string } }
}

async function call(
  base: string,
  path: string,
  init: { method?: string; headers?: object; body?: unknown } = {},
) {
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers: { 'content-type': 'application/json', ...AUTH, ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  return { status: res.status, body: (await res.json()) as Body }
}

const start = (base: string, headers: object = AUTH) =>
  call(base, '/rollout?mode=async', { method: 'POST', headers, body: rolloutBody() })

describe('two replicas sharing a Redis job store', () => {
  test('a job made on A is polled to completion on B', async () => {
    const h = gated()
    const [a, b] = await replicas({ rollout: h.rollout })
    const made = await start(a.url)
    expect(made.status).toBe(202)
    const id = made.body.id
    await vi.waitFor(() => expect(h.started).toHaveBeenCalled())
    await vi.waitFor(async () => expect((await call(b.url, `/rollouts/${id}`)).body.status).toBe('running'))
    h.release.resolve()
    await vi.waitFor(async () => expect((await call(b.url, `/rollouts/${id}`)).body.status).toBe('succeeded'))
    const done = await call(b.url, `/rollouts/${id}`)
    expect(done.body.result).toMatchObject({
      trace_correlation_id: 'trace-1',
      reward_info: { outcome_reward: 1 },
    })
  })

  test('DELETE on B cancels the run on A: its signal aborts, both answer cancelled', async () => {
    const h = gated()
    const [a, b] = await replicas({ rollout: h.rollout }, { cancelCheckIntervalMs: 0 })
    const id = (await start(a.url)).body.id
    await vi.waitFor(() => expect(h.started).toHaveBeenCalled())

    const cancelled = await call(b.url, `/rollouts/${id}`, { method: 'DELETE' })
    expect(cancelled.status).toBe(200)
    expect(cancelled.body).toMatchObject({
      id,
      status: 'cancelled',
      error: { code: 'rollout_cancelled', message: `Rollout job ${id} was cancelled by the caller.` },
    })
    await vi.waitFor(() => expect(h.aborted).toHaveLength(1))
    expect(h.aborted[0]).toMatchObject({ code: 'TASKAPP_ERR_ROLLOUT_CANCELLED' })
    for (const replica of [a, b]) {
      expect((await call(replica.url, `/rollouts/${id}`)).body.status).toBe('cancelled')
    }
    // A's run is final, so its quota slot is free and nothing of it is left in flight.
    await vi.waitFor(() => expect(a.app.stats().cancelled).toBe(1))
    const again = await call(a.url, `/rollouts/${id}`, { method: 'DELETE' })
    expect([again.status, again.body.detail.error.code]).toEqual([409, 'job_already_finished'])
  })

  test('another key gets 404 on B for A’s job, on GET and DELETE; the job keeps running', async () => {
    const h = gated()
    const [a, b] = await replicas({ rollout: h.rollout })
    const id = (await start(a.url)).body.id
    await vi.waitFor(() => expect(h.started).toHaveBeenCalled())
    for (const method of ['GET', 'DELETE']) {
      const res = await call(b.url, `/rollouts/${id}`, { method, headers: AUTH_B })
      expect([res.status, res.body.detail.error.code]).toEqual([404, 'job_not_found'])
    }
    expect(h.aborted).toEqual([])
    expect((await call(b.url, `/rollouts/${id}`)).body.status).toBe('running')
    // Redis holds the owner as a hash of the key, never the key itself.
    const stored = await redis.client().hgetall(`${a.jobStore.prefix}job:${id}`)
    expect(stored.owner).toMatch(/^key:[0-9a-f]{32}$/)
    expect(JSON.stringify(stored)).not.toContain(KEY)
  })

  test('a finished job is readable on both replicas and expires ttlMs after it ended (a Redis TTL)', async () => {
    // ttlMs long enough that a loaded machine still reads the record before it goes.
    const [a, b] = await replicas({}, { ttlMs: 60_000 })
    const id = (await start(a.url)).body.id
    await vi.waitFor(
      async () => expect((await call(b.url, `/rollouts/${id}`)).body.status).toBe('succeeded'),
      {
        timeout: 10_000,
      },
    )
    expect((await call(a.url, `/rollouts/${id}`)).body.status).toBe('succeeded')
    const ttl = await redis.client().pttl(`${a.jobStore.prefix}job:${id}`)
    expect(ttl).toBeGreaterThan(30_000)
    expect(ttl).toBeLessThanOrEqual(60_000)
  })

  test('once the TTL is over, both replicas answer 404', async () => {
    const logger = recordingLogger()
    const h = gated()
    const [a, b] = await replicas({ rollout: h.rollout, logger }, { ttlMs: 500 })
    const id = (await start(a.url)).body.id
    // Not final yet: readable on B whatever the machine's load (running jobs keep maxRunningMs).
    await vi.waitFor(async () => expect((await call(b.url, `/rollouts/${id}`)).body.status).toBe('running'), {
      timeout: 10_000,
    })
    h.release.resolve()
    await vi.waitFor(() => expect(a.app.stats().completed).toBe(1), { timeout: 10_000 })
    for (const replica of [a, b]) {
      await vi.waitFor(async () => expect((await call(replica.url, `/rollouts/${id}`)).status).toBe(404), {
        timeout: 10_000,
        interval: 50,
      })
    }
    // The 404 is the expiry: the final record was stored (nothing failed to write).
    expect(logger.records.filter((r) => r.level === 'error' || r.level === 'warn')).toEqual([])
  })

  test('the cap is cluster-wide: full of A’s running jobs, B answers 503 job_store_full', async () => {
    const h = gated()
    const [a, b] = await replicas({ rollout: h.rollout }, { maxJobs: 2 })
    expect((await start(a.url)).status).toBe(202)
    expect((await start(a.url)).status).toBe(202)
    const refused = await start(b.url)
    expect([refused.status, refused.body.detail.error.code]).toEqual([503, 'job_store_full'])
    h.release.resolve()
  })

  test('Redis restarted: finished jobs are gone, a running job writes its result again', async () => {
    let gate = gated()
    const [a, b] = await replicas({ rollout: (request, ctx) => gate.rollout(request, ctx) })
    gate.release.resolve()
    const finished = (await start(a.url)).body.id
    await vi.waitFor(async () =>
      expect((await call(b.url, `/rollouts/${finished}`)).body.status).toBe('succeeded'),
    )
    const running = (gate = gated())
    const id = (await start(a.url)).body.id
    await vi.waitFor(() => expect(running.started).toHaveBeenCalled())

    await redis.restart()
    // Nothing survives a Redis without persistence (as the test server): both jobs are unknown.
    await vi.waitFor(async () => expect((await call(b.url, `/rollouts/${id}`)).status).toBe(404), {
      timeout: 10_000,
    })
    expect((await call(b.url, `/rollouts/${finished}`)).status).toBe(404)
    // The run on A goes on; its final record is written again and B reads it.
    running.release.resolve()
    await vi.waitFor(
      async () => expect((await call(b.url, `/rollouts/${id}`)).body.status).toBe('succeeded'),
      {
        timeout: 10_000,
      },
    )

    // The subscribers came back: a cancel on B still reaches a new run on A.
    const next = (gate = gated())
    const newId = (await start(a.url)).body.id
    await vi.waitFor(() => expect(next.started).toHaveBeenCalled())
    expect((await call(b.url, `/rollouts/${newId}`, { method: 'DELETE' })).body.status).toBe('cancelled')
    await vi.waitFor(() => expect(next.aborted).toHaveLength(1))
  })
})
