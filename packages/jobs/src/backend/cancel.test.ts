/**
 * Cancelling jobs: the in-flight rollouts are aborted (the real task app sees its rollout signal
 * fire), no rollout starts afterwards, and the job ends `cancelled` with `job.cancelled`.
 */
import { deferred } from '@taskapp/test-utils'
import type { TaskAppConfig } from '@taskapp/task-server'
import { describe, expect, it } from 'vitest'
import { createLocalBackend } from './local-backend'
import {
  AUTH,
  BACKEND_KEY,
  call,
  exampleConfig,
  g3Body,
  readSse,
  serveTaskApp,
  untilEnd,
} from './test-helpers'

/** A task app whose rollouts hang until their signal aborts. */
async function serveHangingTaskApp() {
  const firstStarted = deferred()
  const firstAborted = deferred()
  let started = 0
  let aborted = 0
  const config: TaskAppConfig = {
    appId: 'hanging',
    name: 'Hanging',
    description: 'Rollouts that never finish on their own.',
    requireApiKey: false,
    containerAuth: { mode: 'disabled' },
    provideTasksetDescription: () => ({}),
    provideTaskInstances: () => [],
    rollout: (_request, ctx) => {
      started += 1
      firstStarted.resolve()
      return new Promise((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => {
          aborted += 1
          firstAborted.resolve()
          reject(ctx.signal.reason)
        })
      })
    },
  }
  const task = await serveTaskApp(config)
  return { ...task, firstStarted, firstAborted, started: () => started, aborted: () => aborted }
}

describe('cancel', () => {
  it('PATCH {state: "cancelled"} aborts the in-flight rollouts and ends the job', async () => {
    const task = await serveHangingTaskApp()
    await using backend = await createLocalBackend({
      upstream: { baseUrl: 'http://127.0.0.1:9/v1' },
      apiKeys: [BACKEND_KEY],
    })
    const pl = exampleConfig(task.url, { rollout: { budget: 100, max_concurrent: 3, minibatch_size: 5 } })
    const created = await call(backend, 'POST', '/api/v1/offline/jobs', g3Body(pl))
    const id = created.json.job_id as string
    await task.firstStarted.promise
    await expect.poll(() => task.started()).toBe(3)
    const cancelled = await call(backend, 'PATCH', `/api/v1/offline/jobs/${id}`, {
      state: 'cancelled',
      reason: 'user asked',
    })
    expect(cancelled.status).toBe(200)
    expect(cancelled.json).toMatchObject({ job_id: id, status: 'cancelled' })
    await task.firstAborted.promise
    await expect.poll(() => task.aborted()).toBe(3)
    expect(task.started()).toBe(3)
    const { status, sse } = await untilEnd(backend, id)
    expect(status.status).toBe('cancelled')
    expect(sse.events.at(-1)).toMatchObject({
      type: 'learning.policy.gepa.job.cancelled',
      data: { reason: 'user asked' },
    })
    const again = await call(backend, 'PATCH', `/api/v1/offline/jobs/${id}`, { state: 'cancelled' })
    expect(again.json).toMatchObject({ status: 'cancelled', message: expect.stringMatching(/already ended/) })
  })

  it('POST …/cancel (G2 and G1 paths) cancels too, and a live SSE stream ends with job.cancelled', async () => {
    const task = await serveHangingTaskApp()
    await using backend = await createLocalBackend({
      upstream: { baseUrl: 'http://127.0.0.1:9/v1' },
      apiKeys: [BACKEND_KEY],
    })
    const created = await call(backend, 'POST', '/api/jobs/gepa', {
      algorithm: 'gepa',
      config_body: { prompt_learning: exampleConfig(task.url) },
    })
    const id = created.json.job_id as string
    const live = readSse(`${backend.url}/api/prompt-learning/online/jobs/${id}/events/stream`, AUTH)
    await task.firstStarted.promise
    const cancelled = await call(backend, 'POST', `/api/jobs/${id}/cancel`, { reason: 'stop' })
    expect(cancelled.json).toMatchObject({ job_id: id, status: 'cancelled', attempt_id: null })
    const sse = await live
    expect(sse.done).toBe(true)
    expect(sse.events.at(-1)?.type).toBe('learning.policy.gepa.job.cancelled')
    await task.firstAborted.promise
  })

  it('a pending job (auto_start false) starts with PATCH {state: "running"} and cancels without rollouts', async () => {
    const task = await serveHangingTaskApp()
    await using backend = await createLocalBackend({ upstream: { baseUrl: 'http://127.0.0.1:9/v1' } })
    const body = g3Body(exampleConfig(task.url), { auto_start: false })
    const pending = await call(backend, 'POST', '/api/v1/offline/jobs', body)
    expect(pending.json.status).toBe('pending')
    const cancelled = await call(
      backend,
      'POST',
      `/api/prompt-learning/online/jobs/${pending.json.job_id}/cancel`,
    )
    expect(cancelled.json.status).toBe('cancelled')
    expect(task.started()).toBe(0)
    const other = await call(backend, 'POST', '/api/v1/offline/jobs', body)
    const paused = await call(backend, 'PATCH', `/api/v1/offline/jobs/${other.json.job_id}`, {
      state: 'paused',
    })
    expect(paused.status).toBe(409)
    const running = await call(backend, 'PATCH', `/api/v1/offline/jobs/${other.json.job_id}`, {
      state: 'running',
    })
    expect(running.json.status).toBe('running')
    await task.firstStarted.promise
  })

  it('close() cancels running jobs and aborts their rollouts', async () => {
    const task = await serveHangingTaskApp()
    const backend = await createLocalBackend({ upstream: { baseUrl: 'http://127.0.0.1:9/v1' } })
    const created = await call(backend, 'POST', '/api/v1/offline/jobs', g3Body(exampleConfig(task.url)))
    expect(created.status).toBe(200)
    await task.firstStarted.promise
    await backend.close()
    await task.firstAborted.promise
    await expect(fetch(`${backend.url}/health`)).rejects.toThrow()
  })
})
