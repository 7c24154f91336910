import { describe, expect, onTestFinished, test, vi } from 'vitest'
import { createMemoryJobStore, createTaskApp } from './index'
import type { RolloutContext, RolloutRequest, TaskAppConfig } from './index'
import { deferred, recordingLogger } from '@taskapp/test-utils'
import { AUTH, inject, postRollout, rolloutBody, testConfig } from './test-helpers'

function makeApp(overrides: Partial<TaskAppConfig> = {}) {
  const app = createTaskApp(testConfig(overrides))
  onTestFinished(() => app.lifecycle.close({ graceMs: 1000 }))
  return app
}

type App = ReturnType<typeof makeApp>

/** A handler that waits for `release` (or its abort signal) and records what it saw. */
function gatedHandler() {
  const release = deferred<number>()
  const started = deferred<RolloutContext>()
  const state = { aborted: false as boolean, reason: undefined as unknown }
  const rollout = async (request: RolloutRequest, ctx: RolloutContext) => {
    started.resolve(ctx)
    const reward = await new Promise<number>((resolve, reject) => {
      ctx.signal.addEventListener('abort', () => {
        state.aborted = true
        state.reason = ctx.signal.reason
        reject(ctx.signal.reason)
      })
      void release.promise.then(resolve)
    })
    return { trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: reward } }
  }
  return { rollout, release, started, state }
}

async function poll(app: App, location: string, until: (status: string) => boolean) {
  return vi.waitFor(
    async () => {
      const res = await inject(app, { url: location, headers: AUTH })
      const status = res.json().status as string
      if (!until(status)) throw new Error(`job at ${location} is still ${status}`)
      return res
    },
    { timeout: 10_000, interval: 10 },
  )
}

describe('async rollouts', () => {
  test.each([
    ['?mode=async', '/rollout?mode=async', {}],
    ['Prefer: respond-async', '/rollout', { prefer: 'respond-async, wait=10' }],
  ])('%s: 202 with id and Location, then poll until succeeded', async (_name, url, headers) => {
    const h = gatedHandler()
    const app = makeApp({ rollout: h.rollout })
    const res = await inject(app, {
      method: 'POST',
      url,
      headers: { ...AUTH, ...headers },
      body: rolloutBody(),
    })
    expect(res.status).toBe(202)
    const body = res.json()
    expect(body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      status: 'pending',
      trace_correlation_id: 'trace-1',
      status_url: `/rollouts/${body.id}`,
    })
    expect(res.headers.location).toBe(`/rollouts/${body.id}`)
    if ('prefer' in headers) expect(res.headers['preference-applied']).toBe('respond-async')
    const ctx = await h.started.promise
    expect(ctx.mode).toBe('async')
    const runningRes = await poll(app, body.status_url, (s) => s === 'running')
    expect(runningRes.json()).toMatchObject({
      status: 'running',
      result: null,
      error: null,
      finished_at: null,
    })
    h.release.resolve(0.75)
    const done = await poll(app, body.status_url, (s) => s === 'succeeded')
    const job = done.json()
    expect(job).toEqual({
      id: body.id,
      status: 'succeeded',
      trace_correlation_id: 'trace-1',
      created_at: expect.any(String),
      started_at: expect.any(String),
      finished_at: expect.any(String),
      duration_ms: expect.any(Number),
      result: {
        trace_correlation_id: 'trace-1',
        reward_info: { outcome_reward: 0.75, outcome_objectives: { reward: 0.75 }, details: {} },
      },
      error: null,
    })
    expect(Date.parse(job.finished_at)).toBeGreaterThanOrEqual(Date.parse(job.started_at))
  })

  test('DELETE cancels a running job: its signal fires and the status becomes cancelled', async () => {
    const h = gatedHandler()
    const app = makeApp({ rollout: h.rollout })
    const res = await postRollout(app, { async: true })
    const { id } = res.json()
    await h.started.promise
    const del = await inject(app, { method: 'DELETE', url: `/rollouts/${id}`, headers: AUTH })
    expect(del.status).toBe(200)
    expect(del.json()).toMatchObject({ id, status: 'cancelled', error: { code: 'rollout_cancelled' } })
    expect(h.state.aborted).toBe(true)
    expect((h.state.reason as { code?: string }).code).toBe('TASKAPP_ERR_ROLLOUT_CANCELLED')
    const get = await inject(app, { url: `/rollouts/${id}`, headers: AUTH })
    expect(get.json().status).toBe('cancelled')
    // A second DELETE has nothing left to cancel.
    const again = await inject(app, { method: 'DELETE', url: `/rollouts/${id}`, headers: AUTH })
    expect(again.status).toBe(409)
    expect(again.json().detail.error).toMatchObject({ code: 'job_already_finished', status: 'cancelled' })
  })

  test('a cancelled job stays cancelled even if the handler ignores the signal and returns later', async () => {
    const release = deferred<void>()
    const started = deferred<void>()
    const returned = deferred<void>()
    const app = makeApp({
      rollout: async (r) => {
        started.resolve()
        await release.promise
        returned.resolve()
        return { trace_correlation_id: r.trace_correlation_id, reward_info: { outcome_reward: 1 } }
      },
    })
    const { id } = (await postRollout(app, { async: true })).json()
    await started.promise
    expect(
      (await inject(app, { method: 'DELETE', url: `/rollouts/${id}`, headers: AUTH })).json().status,
    ).toBe('cancelled')
    release.resolve()
    await returned.promise
    expect((await inject(app, { url: `/rollouts/${id}`, headers: AUTH })).json()).toMatchObject({
      status: 'cancelled',
      result: null,
    })
  })

  test('a handler that first reads ctx.signal after the job was cancelled sees it aborted', async () => {
    const release = deferred<void>()
    const started = deferred<void>()
    const seen = deferred<{ aborted: boolean; code: string | undefined }>()
    const app = makeApp({
      rollout: async (r, ctx) => {
        started.resolve()
        await release.promise
        // The AbortSignal is created lazily, on this first access, already aborted.
        seen.resolve({
          aborted: ctx.signal.aborted,
          code: (ctx.signal.reason as { code?: string } | undefined)?.code,
        })
        return { trace_correlation_id: r.trace_correlation_id, reward_info: { outcome_reward: 1 } }
      },
    })
    const { id } = (await postRollout(app, { async: true })).json()
    await started.promise
    await inject(app, { method: 'DELETE', url: `/rollouts/${id}`, headers: AUTH })
    release.resolve()
    expect(await seen.promise).toEqual({ aborted: true, code: 'TASKAPP_ERR_ROLLOUT_CANCELLED' })
  })

  test('a failing async handler: status failed with the error code and id', async () => {
    const app = makeApp({
      rollout: () => {
        throw new Error('nope')
      },
    })
    const { status_url } = (await postRollout(app, { async: true })).json()
    const done = await poll(app, status_url, (s) => s === 'failed')
    expect(done.json().error).toEqual({
      code: 'rollout_failed',
      message: expect.stringContaining('error id'),
      error_id: expect.any(String),
    })
  })

  test('GET and DELETE of an unknown job: 404 job_not_found', async () => {
    const app = makeApp()
    for (const method of ['GET', 'DELETE']) {
      const res = await inject(app, { method, url: '/rollouts/does-not-exist', headers: AUTH })
      expect(res.status).toBe(404)
      expect(res.json().detail.error.code).toBe('job_not_found')
    }
  })

  test('DELETE of a finished job: 409 job_already_finished', async () => {
    const app = makeApp()
    const { id, status_url } = (await postRollout(app, { async: true })).json()
    await poll(app, status_url, (s) => s === 'succeeded')
    const res = await inject(app, { method: 'DELETE', url: `/rollouts/${id}`, headers: AUTH })
    expect(res.status).toBe(409)
    expect(res.json().detail.error.status).toBe('succeeded')
  })

  test('a full job store: 503 job_store_full with Retry-After, no job started', async () => {
    const h = gatedHandler()
    const app = makeApp({ rollout: h.rollout, jobStore: createMemoryJobStore({ maxJobs: 1 }) })
    const first = await postRollout(app, { async: true })
    expect(first.status).toBe(202)
    await h.started.promise
    const second = await postRollout(app, { async: true })
    expect(second.status).toBe(503)
    expect(second.headers['retry-after']).toBe('5')
    expect(second.json().detail.error.code).toBe('job_store_full')
    h.release.resolve(1)
    await poll(app, first.json().status_url, (s) => s === 'succeeded')
    // Once the first job is finished it can be evicted to make room.
    const third = await postRollout(app, { async: true })
    expect(third.status).toBe(202)
  })
})

describe('sync rollouts with syncTimeoutMs', () => {
  test('a sync call that outlives syncTimeoutMs turns into a job: 202, then the result by polling', async () => {
    const h = gatedHandler()
    const app = makeApp({ rollout: h.rollout, syncTimeoutMs: 20 })
    const res = await postRollout(app)
    expect(res.status).toBe(202)
    const body = res.json()
    expect(body.status).toBe('running')
    expect(body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f-]{27}$/) // a random job id, not the internal sync counter
    expect(res.headers.location).toBe(body.status_url)
    expect(h.state.aborted).toBe(false) // the caller's disconnect after a 202 does not cancel the job
    h.release.resolve(0.5)
    const done = await poll(app, body.status_url, (s) => s === 'succeeded')
    expect(done.json().result.reward_info.outcome_reward).toBe(0.5)
    expect(h.state.aborted).toBe(false)
  })

  test('a sync call turned into a job stays one run: DELETE with the 202 id cancels the running handler', async () => {
    const h = gatedHandler()
    const app = makeApp({ rollout: h.rollout, syncTimeoutMs: 20 })
    const res = await postRollout(app)
    expect(res.status).toBe(202)
    const { id } = res.json()
    const ctx = await h.started.promise
    expect(ctx.mode).toBe('sync') // how the caller asked; the run did not become another one
    const del = await inject(app, { method: 'DELETE', url: `/rollouts/${id}`, headers: AUTH })
    expect(del.status).toBe(200)
    expect(del.json()).toMatchObject({ id, status: 'cancelled', error: { code: 'rollout_cancelled' } })
    expect(h.state.aborted).toBe(true)
    expect((h.state.reason as { message?: string }).message).toContain(id)
  })

  test('a job store that refuses the sync-timeout job: the caller keeps waiting and gets its 200', async () => {
    const h = gatedHandler()
    const store = createMemoryJobStore()
    onTestFinished(() => store.close())
    const logger = recordingLogger()
    const refusing = {
      put: () => {
        throw new Error('store down')
      },
      get: (id: string) => store.get(id),
    }
    const app = makeApp({ rollout: h.rollout, syncTimeoutMs: 20, jobStore: refusing, logger })
    const pending = postRollout(app)
    await expect
      .poll(() => logger.records.some((l) => l.msg?.includes('refused the sync-timeout job')), {
        timeout: 10_000,
      })
      .toBe(true)
    h.release.resolve(0.25)
    const res = await pending
    expect(res.status).toBe(200)
    expect(res.json().reward_info.outcome_reward).toBe(0.25)
  })

  test('a sync call that finishes in time answers 200 as usual', async () => {
    const app = makeApp({ syncTimeoutMs: 10_000 })
    const res = await postRollout(app)
    expect(res.status).toBe(200)
  })
})

describe('deadlines and disconnects', () => {
  test('safety.max_time_s aborts the handler: 504 rollout_timeout', async () => {
    const h = gatedHandler()
    const app = makeApp({ rollout: h.rollout })
    const res = await postRollout(app, { body: { safety: { max_time_s: 0.03 } } })
    expect(res.status).toBe(504)
    expect(res.json().detail.error.code).toBe('rollout_timeout')
    expect(h.state.aborted).toBe(true)
  })

  test('a sync caller that disconnects aborts the handler signal', async () => {
    const h = gatedHandler()
    const logger = recordingLogger()
    const app = makeApp({ rollout: h.rollout, logger })
    const client = new AbortController()
    const pending = inject(app, {
      method: 'POST',
      url: '/rollout',
      headers: AUTH,
      body: rolloutBody(),
      signal: client.signal,
    })
    pending.catch(() => {})
    await h.started.promise
    client.abort()
    await expect(pending).rejects.toThrow()
    await expect.poll(() => h.state.aborted, { timeout: 10_000 }).toBe(true)
    expect(h.state.aborted).toBe(true)
  })

  test('a handler that ignores the signal cannot hold the answer past the deadline', async () => {
    const never = deferred<void>()
    const app = makeApp({
      rollout: async () => {
        await never.promise
        return { trace_correlation_id: 'x', reward_info: { outcome_reward: 1 } }
      },
    })
    onTestFinished(() => never.resolve())
    const res = await postRollout(app, { body: { safety: { max_time_s: 0.03 } } })
    expect(res.status).toBe(504)
  })
})

describe('onRolloutComplete', () => {
  test('called once per rollout with request, response and duration; its failure changes nothing', async () => {
    const events: unknown[] = []
    const logger = recordingLogger()
    const app = makeApp({
      logger,
      onRolloutComplete: (event) => {
        events.push(event)
        throw new Error('tracker down')
      },
    })
    const res = await postRollout(app)
    expect(res.status).toBe(200)
    await expect
      .poll(() => logger.records.some((l) => l.msg?.includes('onRolloutComplete')), { timeout: 10_000 })
      .toBe(true)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({
      request: { trace_correlation_id: 'trace-1' },
      response: { reward_info: { outcome_reward: 1 } },
      durationMs: expect.any(Number),
      requestId: expect.any(String),
    })
    expect((events[0] as { error?: unknown }).error).toBeUndefined()
  })

  test('a failed rollout reports the error', async () => {
    const events: { error?: { code: string; cause?: unknown } }[] = []
    const app = makeApp({
      onRolloutComplete: (event) => {
        events.push(event)
      },
      rollout: () => {
        throw new Error('broken')
      },
    })
    await postRollout(app)
    await expect.poll(() => events.length, { timeout: 10_000 }).toBe(1)
    expect(events[0]?.error?.code).toBe('TASKAPP_ERR_ROLLOUT_FAILED')
    expect((events[0]?.error?.cause as Error).message).toBe('broken')
  })
})
