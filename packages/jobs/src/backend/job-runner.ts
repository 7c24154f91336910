/**
 * Starting, finishing and cancelling jobs: a GEPA job runs the optimizer and ends with
 * `job.completed`, `job.failed` or `job.cancelled`; a MIPRO job fails at once.
 */
import { safeLog, type Logger } from '@taskapp/core'
import { JobsError } from '../errors'
import { runGepa } from './gepa'
import type { Interceptor } from './interceptor'
import type { JobRecord } from './job-record'
import type { TaskAppAccess } from './task-app-client'
import type { TokenSigner } from './token-signer'
import type { UpstreamOptions } from './upstream'

/** What the runner needs from the backend. */
export interface RunnerDeps {
  readonly interceptor: Interceptor
  /** `<public url>/interceptor`. */
  readonly interceptorBase: string
  readonly upstream: UpstreamOptions
  readonly signer?: TokenSigner
  readonly rolloutTimeoutMs: number
  readonly logger: Logger
}

/** The reason a cancelled job's abort carries. */
export class JobCancelled extends Error {
  override readonly name = 'JobCancelled'
}

/** Fails a MIPRO job at once: the local backend runs GEPA only. */
export function failUnsupported(job: JobRecord): void {
  const message = `The local backend runs GEPA only; this job asked for ${job.request.algorithm.toUpperCase()}. Submit it with algorithm = "gepa" (kind "gepa_offline"), or to Synth's hosted backend.`
  job.finish(
    'failed',
    { reason: message, error_code: 'TASKAPP_ERR_JOBS_UNSUPPORTED_ALGORITHM' },
    {
      message,
      code: 'TASKAPP_ERR_JOBS_UNSUPPORTED_ALGORITHM',
    },
  )
}

function accessOf(job: JobRecord, deps: RunnerDeps): TaskAppAccess {
  const spec = job.request.gepa
  if (spec === undefined) throw new Error('accessOf: not a GEPA job')
  return {
    url: spec.containerUrl,
    rolloutTimeoutMs: deps.rolloutTimeoutMs,
    ...(spec.workerToken !== undefined && { workerToken: spec.workerToken }),
    ...(spec.containerApiKey !== undefined && { apiKey: spec.containerApiKey }),
    ...(deps.signer !== undefined && { signer: deps.signer }),
  }
}

async function runJob(job: JobRecord, deps: RunnerDeps): Promise<void> {
  const spec = job.request.gepa
  if (spec === undefined) return failUnsupported(job)
  job.status = 'running'
  job.startedAt = new Date()
  job.emit('job.started', {
    algorithm: 'gepa',
    container_url: spec.containerUrl,
    train_seeds: spec.trainSeeds.length,
    validation_seeds: spec.validationSeeds.length,
    rollout_budget: spec.budget ?? null,
    max_concurrent: spec.maxConcurrent,
    num_generations: spec.generations,
    children_per_generation: spec.childrenPerGeneration,
    container_auth:
      deps.signer !== undefined ? 'container_token' : spec.containerApiKey !== undefined ? 'api_key' : 'none',
  })
  try {
    const ctx = { job, spec, access: accessOf(job, deps), ...deps }
    const outcome = await runGepa(ctx)
    const ranked = [...outcome.pool].sort((a, b) => (b.validationScore ?? 0) - (a.validationScore ?? 0))
    job.emit('validation.completed', {
      ranked: ranked.map((c, i) => ({
        rank: i + 1,
        candidate_id: c.id,
        accuracy: c.validationScore ?? 0,
        generation: c.generation,
      })),
      rank: 1,
      candidate_id: outcome.best.id,
      accuracy: outcome.best.validationScore ?? 0,
    })
    job.finish('succeeded', {
      best_score: outcome.best.validationScore ?? 0,
      baseline_score: outcome.baseline.validationScore ?? 0,
      best_prompt: outcome.best.text,
      total_candidates: outcome.proposed,
      accepted_candidates: outcome.pool.length - 1,
      rollouts_used: job.progress.rolloutsUsed,
      finish_reason: outcome.finishReason,
    })
  } catch (error) {
    finishOnError(job, error, deps.logger)
  } finally {
    deps.interceptor.unregisterJob(job.id)
  }
}

function finishOnError(job: JobRecord, error: unknown, logger: Logger): void {
  if (job.abort.signal.aborted) {
    const reason = job.abort.signal.reason instanceof Error ? job.abort.signal.reason.message : 'cancelled'
    job.finish('cancelled', { reason })
    return
  }
  if (error instanceof JobsError) {
    job.finish(
      'failed',
      { reason: error.message, error_code: error.code },
      { message: error.message, code: error.code },
    )
    return
  }
  safeLog(logger, 'error', { err: error, job: job.id }, 'local backend: job failed unexpectedly')
  const message = `The local backend failed: ${error instanceof Error ? error.message : String(error)}`
  job.finish('failed', { reason: message, error_code: 'internal_error' }, { message, code: 'internal_error' })
}

/** Starts the job's run (once); the run never rejects. */
export function startJob(job: JobRecord, deps: RunnerDeps): void {
  if (job.run !== undefined || job.terminal) return
  job.run = runJob(job, deps)
}

/** Cancels a job: aborts its in-flight rollouts and model calls and waits until it has ended. */
export async function cancelJob(job: JobRecord, reason: string): Promise<void> {
  if (job.terminal) return
  job.abort.abort(new JobCancelled(reason))
  if (job.run === undefined) job.finish('cancelled', { reason })
  else await job.run
}
