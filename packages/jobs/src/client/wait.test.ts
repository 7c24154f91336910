/**
 * waitUntilComplete() and result(): success with the result the events give, failure with the
 * backend's message, cancellation, timeout and abort without leaked streams. Against the fake
 * backend (src/fixtures/fake-backend.ts: node:http on 127.0.0.1, written from the reference's
 * request and response shapes; the real local backend is built separately).
 */
import { describe, expect, it, vi } from 'vitest'
import { JobsError, type JobEvent } from '../index'
import { submittedJob } from '../fixtures/submitted-job'

const setup = submittedJob

async function rejection(promise: Promise<unknown>): Promise<JobsError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(JobsError)
  return err as JobsError
}

const expectedResult = {
  status: 'succeeded',
  bestScore: 0.7,
  bestPrompt: 'Route the ticket by its product.',
  baselineScore: 0.4,
  generationsCompleted: 1,
  candidatesEvaluated: 2,
  error: undefined,
  candidates: [
    {
      candidateId: 'c1',
      score: 0.5,
      accepted: true,
      generation: 1,
      validationScore: undefined,
      rank: undefined,
    },
    { candidateId: 'c2', score: 0.7, accepted: true, generation: 1, validationScore: 0.65, rank: 1 },
  ],
  validation: [{ candidateId: 'c2', rank: 1, score: 0.65 }],
}

describe('waitUntilComplete()', () => {
  it('resolves with the result when the job succeeds, calling onEvent for every event in order', async () => {
    await using t = await setup()
    const seen: JobEvent[] = []
    const pending = t.job.waitUntilComplete({ timeoutMs: 10_000, onEvent: (e) => void seen.push(e) })
    await vi.waitFor(() => expect(t.backend.streams.open).toBe(1))
    t.backend.playGepa(t.jobId)
    const result = await pending
    expect(result).toMatchObject({ jobId: t.jobId, ...expectedResult })
    expect(seen.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    await vi.waitFor(() => expect(t.backend.streams.open).toBe(0))
  })

  it('works the same against a G2 backend (create /api/jobs/gepa, events on the G1 paths)', async () => {
    await using t = await setup({ generations: ['g2'] })
    t.backend.playGepa(t.jobId)
    expect(await t.job.waitUntilComplete()).toMatchObject(expectedResult)
    expect(
      t.backend.requests.some((r) => r.path === `/api/prompt-learning/online/jobs/${t.jobId}/events/stream`),
    ).toBe(true)
  })

  it('a failed job rejects with TASKAPP_ERR_JOBS_JOB_FAILED and the backend message', async () => {
    await using t = await setup()
    t.backend.playGepa(t.jobId, 'failed')
    const err = await rejection(t.job.waitUntilComplete())
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_JOBS_JOB_FAILED', jobId: t.jobId })
    expect(err.message).toContain('rollout budget exhausted: task app answered 500')
  })

  it('a job cancelled with cancel() rejects with TASKAPP_ERR_JOBS_CANCELLED', async () => {
    await using t = await setup()
    const pending = rejection(t.job.waitUntilComplete())
    await vi.waitFor(() => expect(t.backend.streams.open).toBe(1))
    await t.job.cancel({ reason: 'operator stop' })
    const err = await pending
    expect(err.code).toBe('TASKAPP_ERR_JOBS_CANCELLED')
    expect(err.message).toContain('operator stop')
  })

  it('timeoutMs: rejects with TASKAPP_ERR_JOBS_TIMEOUT, closes the stream, leaves the job running', async () => {
    await using t = await setup()
    t.backend.emit(t.jobId, 'learning.policy.gepa.job.started')
    const err = await rejection(t.job.waitUntilComplete({ timeoutMs: 150 }))
    expect(err.code).toBe('TASKAPP_ERR_JOBS_TIMEOUT')
    expect(err.message).toContain('150 ms')
    await vi.waitFor(() => expect(t.backend.streams.open).toBe(0))
    expect(t.backend.requests.some((r) => r.method === 'PATCH')).toBe(false)
    expect((await t.job.status()).status).toBe('running')
  })

  it('timeoutMs while polling pages: the pause between polls is cut short', async () => {
    await using t = await setup({ stream: 'missing' }, { pollIntervalMs: 60_000 })
    const err = await rejection(t.job.waitUntilComplete({ timeoutMs: 200 }))
    expect(err.code).toBe('TASKAPP_ERR_JOBS_TIMEOUT')
  })

  it('an aborted wait rejects with signal.reason', async () => {
    await using t = await setup()
    const controller = new AbortController()
    const pending = t.job.waitUntilComplete({ signal: controller.signal })
    await vi.waitFor(() => expect(t.backend.streams.open).toBe(1))
    controller.abort(new Error('shutting down'))
    await expect(pending).rejects.toThrow('shutting down')
    await vi.waitFor(() => expect(t.backend.streams.open).toBe(0))
  })

  it('a paused job resolves with status paused', async () => {
    await using t = await setup()
    t.backend.emit(t.jobId, 'learning.policy.gepa.job.paused', { reason: 'operator' })
    t.backend.setStatus(t.jobId, 'paused')
    expect((await t.job.waitUntilComplete()).status).toBe('paused')
  })

  it('takes the terminal event status when the status route lags behind', async () => {
    await using t = await setup()
    t.backend.emit(t.jobId, 'learning.policy.gepa.job.completed', { best_score: 0.9 })
    const result = await t.job.waitUntilComplete()
    expect(result).toMatchObject({ status: 'succeeded', bestScore: 0.9 })
    expect(result.raw).toMatchObject({ status: 'running' })
  })

  it('reads lenient status spellings (completed → succeeded, error → failed)', async () => {
    await using t = await setup({ stream: 'missing' })
    t.backend.setStatus(t.jobId, 'error', { error_message: 'worker crashed' })
    const err = await rejection(t.job.waitUntilComplete())
    expect(err.code).toBe('TASKAPP_ERR_JOBS_JOB_FAILED')
    expect(err.message).toContain('worker crashed')
    t.backend.setStatus(t.jobId, 'COMPLETED', { best_score: 0.5 })
    expect(await t.job.status()).toMatchObject({
      status: 'succeeded',
      rawStatus: 'COMPLETED',
      bestScore: 0.5,
    })
  })

  it('rejects a bad timeoutMs', async () => {
    await using t = await setup()
    expect((await rejection(t.job.waitUntilComplete({ timeoutMs: -1 }))).code).toBe(
      'TASKAPP_ERR_JOBS_INVALID_CONFIG',
    )
  })
})

describe('result()', () => {
  it('reads the events pages itself when nothing was iterated yet', async () => {
    await using t = await setup()
    t.backend.playGepa(t.jobId)
    expect(await t.job.result()).toMatchObject(expectedResult)
  })

  it('takes best score and prompt from the events when the status has none (G2-era status)', async () => {
    await using t = await setup({ stream: 'missing' })
    t.backend.playGepa(t.jobId)
    t.backend.setStatus(t.jobId, 'succeeded', { best_reward: null, best_score: null, best_candidate: null })
    expect(await t.job.result()).toMatchObject({
      bestScore: 0.7,
      bestPrompt: 'Route the ticket by its product.',
    })
  })

  it('counts each event once after events() and result() both read them', async () => {
    await using t = await setup()
    t.backend.playGepa(t.jobId)
    for await (const _ of t.job.events()) {
      // drain
    }
    const result = await t.job.result()
    expect(result.candidates).toHaveLength(2)
    expect(result.validation).toHaveLength(1)
  })
})
