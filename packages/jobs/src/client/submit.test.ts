/**
 * Creating a job against a fake backend (src/fixtures/fake-backend.ts: a node:http server on
 * 127.0.0.1 written from the reference's request and response shapes, since the real local backend
 * is built separately): the newest route first, older ones only on 404/405, never twice on other
 * answers; both auth headers; the worker token only for SynthTunnel URLs; typed errors.
 */
import { describe, expect, it } from 'vitest'
import { listenLoopback } from '@taskapp/test-utils'
import { JobsError, PromptLearningJob, type PromptLearningJobOptions } from '../index'
import { startFakeBackend } from '../fixtures/fake-backend'

const config = {
  prompt_learning: {
    algorithm: 'gepa',
    container_url: 'http://127.0.0.1:8114',
    gepa: { evaluation: { seeds: [0, 1, 2], validation_seeds: [3] } },
  },
}

function options(
  backendUrl: string,
  extra: Partial<PromptLearningJobOptions> = {},
): PromptLearningJobOptions {
  return { backendUrl, apiKey: 'sk-test', env: {}, config, pollIntervalMs: 20, ...extra }
}

async function rejection(promise: Promise<unknown>): Promise<JobsError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(JobsError)
  return err as JobsError
}

const posts = (requests: { method: string; path: string }[]): string[] =>
  requests.filter((r) => r.method === 'POST').map((r) => r.path)

describe('submit(): wire generations', () => {
  it('creates with POST /api/v1/offline/jobs and the G3 body; reads status from the G3 route', async () => {
    await using backend = await startFakeBackend()
    await using job = await PromptLearningJob.fromConfig(options(backend.url))
    const jobId = await job.submit()
    expect(jobId).toMatch(/^pl_[0-9a-f]+$/)
    expect(job.generation).toBe('g3')
    expect(posts(backend.requests)).toEqual(['/api/v1/offline/jobs'])
    expect(backend.onlyJob().createBody).toEqual({
      kind: 'gepa_offline',
      technique: 'discrete_optimization',
      config_mode: 'DEFAULT',
      system: { name: 'sdk-gepa-offline', reuse: true },
      config: {
        prompt_learning: {
          ...config.prompt_learning,
          rollout_health_check_mode: 'warn',
        },
      },
      metadata: { backend_base_url: `${backend.url}/api` },
      auto_start: true,
    })
    const status = await job.status()
    expect(status).toMatchObject({ jobId, status: 'running', rawStatus: 'running' })
    expect(backend.requests.at(-1)?.path).toBe(`/api/v1/offline/jobs/${jobId}`)
  })

  it('submit() twice creates one job', async () => {
    await using backend = await startFakeBackend()
    await using job = await PromptLearningJob.fromConfig(options(backend.url))
    const [a, b] = await Promise.all([job.submit(), job.submit()])
    expect(a).toBe(b)
    expect(await job.submit()).toBe(a)
    expect(backend.jobs.size).toBe(1)
  })

  it.each([404, 405] as const)(
    'falls back to POST /api/jobs/gepa (G2 body) when the G3 route answers %i',
    async (missingStatus) => {
      await using backend = await startFakeBackend({ generations: ['g2'], missingStatus })
      await using job = await PromptLearningJob.fromConfig(options(backend.url))
      const jobId = await job.submit()
      expect(job.generation).toBe('g2')
      expect(posts(backend.requests)).toEqual(['/api/v1/offline/jobs', '/api/jobs/gepa'])
      expect(backend.onlyJob().createBody).toMatchObject({
        algorithm: 'gepa',
        config_body: { prompt_learning: { container_url: 'http://127.0.0.1:8114' } },
        overrides: {},
        metadata: { backend_base_url: `${backend.url}/api` },
        auto_start: true,
      })
      expect((await job.status()).jobId).toBe(jobId)
      expect(backend.requests.at(-1)?.path).toBe(`/api/jobs/${jobId}`)
    },
  )

  it('falls back to G1 (POST /api/prompt-learning/online/jobs, reply { id }) when G3 and G2 are missing', async () => {
    await using backend = await startFakeBackend({ generations: ['g1'] })
    await using job = await PromptLearningJob.fromConfig(options(backend.url))
    await job.submit()
    expect(job.generation).toBe('g1')
    expect(posts(backend.requests)).toEqual([
      '/api/v1/offline/jobs',
      '/api/jobs/gepa',
      '/api/prompt-learning/online/jobs',
    ])
  })

  it('does NOT fall back on a 500: one create, a backend error with the backend message', async () => {
    await using backend = await startFakeBackend({
      generations: ['g3', 'g2', 'g1'],
      respond: (r) =>
        r.method === 'POST' ? { status: 500, body: { detail: 'database is down' } } : undefined,
    })
    await using job = await PromptLearningJob.fromConfig(options(backend.url))
    const err = await rejection(job.submit())
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_JOBS_BACKEND_ERROR', status: 500 })
    expect(err.message).toContain('The backend says: database is down')
    expect(posts(backend.requests)).toEqual(['/api/v1/offline/jobs'])
  })

  it('a backend with no create route at all: a backend error naming the routes tried', async () => {
    await using backend = await startFakeBackend({ generations: [] })
    await using job = await PromptLearningJob.fromConfig(options(backend.url))
    const err = await rejection(job.submit())
    expect(err.code).toBe('TASKAPP_ERR_JOBS_BACKEND_ERROR')
    expect(err.message).toContain(
      'POST /api/v1/offline/jobs, POST /api/jobs/gepa, POST /api/prompt-learning/online/jobs',
    )
  })

  it('a create reply without job_id is a backend error', async () => {
    await using backend = await startFakeBackend({
      respond: (r) => (r.method === 'POST' ? { status: 200, body: { ok: true } } : undefined),
    })
    await using job = await PromptLearningJob.fromConfig(options(backend.url))
    const err = await rejection(job.submit())
    expect(err.code).toBe('TASKAPP_ERR_JOBS_BACKEND_ERROR')
    expect(err.message).toContain('expected { "job_id": "..." }')
  })
})

describe('headers', () => {
  it('sends Authorization: Bearer and X-API-Key on every call, no worker token for a plain URL', async () => {
    await using backend = await startFakeBackend()
    await using job = await PromptLearningJob.fromConfig(options(backend.url, { workerToken: 'wt_secret' }))
    await job.submit()
    await job.status()
    await job.cancel()
    expect(backend.requests.length).toBe(3)
    for (const r of backend.requests) {
      expect(r.headers.authorization).toBe('Bearer sk-test')
      expect(r.headers['x-api-key']).toBe('sk-test')
      expect(r.headers['x-synthtunnel-worker-token']).toBeUndefined()
    }
  })

  it('sends X-SynthTunnel-Worker-Token on create only, when the task app URL is a SynthTunnel URL', async () => {
    await using backend = await startFakeBackend()
    await using job = await PromptLearningJob.fromConfig(
      options(backend.url, {
        workerToken: 'wt_secret',
        overrides: { task_url: 'http://127.0.0.1:8787/s/rt_0123abcd' },
      }),
    )
    await job.submit()
    await job.status()
    const [create, status] = backend.requests
    expect(create?.headers['x-synthtunnel-worker-token']).toBe('wt_secret')
    expect(status?.headers['x-synthtunnel-worker-token']).toBeUndefined()
    expect(JSON.stringify(create?.body)).not.toContain('wt_secret') // G3: header only
  })
})

describe('typed errors', () => {
  it.each([
    [401, 'TASKAPP_ERR_JOBS_AUTH'],
    [403, 'TASKAPP_ERR_JOBS_AUTH'],
    [429, 'TASKAPP_ERR_JOBS_USAGE_LIMIT'],
  ] as const)('HTTP %i on create → %s, and no fallback', async (status, code) => {
    await using backend = await startFakeBackend({
      generations: ['g3', 'g2'],
      respond: () => ({ status, body: { detail: `nope ${status}` } }),
    })
    await using job = await PromptLearningJob.fromConfig(options(backend.url))
    const err = await rejection(job.submit())
    expect(err).toMatchObject({ code, status })
    expect(err.message).toContain(`nope ${status}`)
    expect(backend.requests).toHaveLength(1)
  })

  it('a wrong key is refused by the backend: auth error naming apiKey and SYNTH_API_KEY', async () => {
    await using backend = await startFakeBackend({ apiKey: 'sk-right' })
    await using job = await PromptLearningJob.fromConfig(options(backend.url, { apiKey: 'sk-wrong' }))
    const err = await rejection(job.submit())
    expect(err.code).toBe('TASKAPP_ERR_JOBS_AUTH')
    expect(err.message).toContain('apiKey (or SYNTH_API_KEY)')
    expect(err.message).not.toContain('sk-wrong')
  })

  it('a closed port → backend unreachable, saying the job may exist', async () => {
    const closed = await listenLoopback((_req, res) => res.end())
    await closed.close()
    await using job = await PromptLearningJob.fromConfig(options(closed.url))
    const err = await rejection(job.submit())
    expect(err.code).toBe('TASKAPP_ERR_JOBS_BACKEND_UNREACHABLE')
    expect(err.message).toContain(closed.url)
    expect(err.cause).toBeDefined()
  })

  it('status(), events(), cancel(), result() and waitUntilComplete() before submit() → not submitted', async () => {
    await using job = await PromptLearningJob.fromConfig(options('http://127.0.0.1:9'))
    for (const call of [
      () => job.status(),
      () => job.cancel(),
      () => job.result(),
      () => job.waitUntilComplete(),
    ]) {
      expect((await rejection(call())).code).toBe('TASKAPP_ERR_JOBS_NOT_SUBMITTED')
    }
    expect(() => job.events()).toThrow(expect.objectContaining({ code: 'TASKAPP_ERR_JOBS_NOT_SUBMITTED' }))
  })

  it('an aborted submit rejects with signal.reason', async () => {
    await using backend = await startFakeBackend()
    await using job = await PromptLearningJob.fromConfig(options(backend.url))
    const reason = new Error('stop')
    await expect(job.submit({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
  })
})

describe('cancel()', () => {
  it('G3: PATCH the job with { state: "cancelled", reason }', async () => {
    await using backend = await startFakeBackend()
    await using job = await PromptLearningJob.fromConfig(options(backend.url))
    const jobId = await job.submit()
    await job.cancel({ reason: 'enough' })
    const patch = backend.requests.at(-1)
    expect(patch).toMatchObject({
      method: 'PATCH',
      path: `/api/v1/offline/jobs/${jobId}`,
      body: { state: 'cancelled', reason: 'enough' },
    })
    expect((await job.status()).status).toBe('cancelled')
  })

  it('G2: POST /api/jobs/{id}/cancel', async () => {
    await using backend = await startFakeBackend({ generations: ['g2'] })
    await using job = await PromptLearningJob.fromConfig(options(backend.url))
    const jobId = await job.submit()
    await job.cancel()
    expect(backend.requests.at(-1)).toMatchObject({ method: 'POST', path: `/api/jobs/${jobId}/cancel` })
  })
})
