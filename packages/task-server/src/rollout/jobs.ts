/**
 * Rollout jobs: the records a run leaves in the {@link JobStore} as it goes from pending to a
 * final status, and their JSON view. No HTTP here: the routes send the answers.
 */
import { TaskServerError } from '../errors'
import type { JobCancellation, JobStore, RolloutJob } from '../job-store'
import { safeLog, type TaskAppLogger } from '../logger'
import { finalStateOf, type Outcome } from './outcome'
import { abortRun, whenRun, isFinal, type Run, type RunRegistry } from './run'

/** The job as `GET /rollouts/:id` answers it (snake_case, ISO timestamps, nulls for what is unknown). */
export function jobView(job: RolloutJob) {
  return {
    id: job.id,
    status: job.status,
    trace_correlation_id: job.traceCorrelationId,
    created_at: new Date(job.createdAt).toISOString(),
    started_at: job.startedAt === undefined ? null : new Date(job.startedAt).toISOString(),
    finished_at: job.finishedAt === undefined ? null : new Date(job.finishedAt).toISOString(),
    duration_ms:
      job.startedAt !== undefined && job.finishedAt !== undefined ? job.finishedAt - job.startedAt : null,
    result: job.result ?? null,
    error: job.error
      ? { code: job.error.code, message: job.error.message, error_id: job.error.errorId ?? null }
      : null,
  }
}

/** The abort reason of a job cancelled by its owner (`DELETE /rollouts/:id`, on any task app). */
export function cancelReason(id: string): TaskServerError {
  return new TaskServerError(
    'TASKAPP_ERR_ROLLOUT_CANCELLED',
    `Rollout job ${id} was cancelled by the caller.`,
  )
}

/** What a cancel for `reason` lays over the record of job `id` (as the run itself would store it). */
function cancellationOf(id: string, reason: unknown): JobCancellation {
  const message = reason instanceof Error ? reason.message : `Rollout job ${id} was cancelled.`
  return { finishedAt: Date.now(), error: { code: 'rollout_cancelled', message } }
}

/** The final record of a job that ended with `outcome`. */
function finalRecord(base: RolloutJob, outcome: Outcome): RolloutJob {
  const finishedAt = Date.now()
  return outcome.ok
    ? { ...base, status: 'succeeded', finishedAt, result: outcome.response }
    : {
        ...base,
        status: outcome.jobStatus,
        finishedAt,
        error: { code: outcome.code, message: outcome.message, errorId: outcome.errorId },
      }
}

/** The job side of the runs. */
export interface Jobs {
  /**
   * Stores the `pending` record of an async run for `owner`; resolves undefined when the owner
   * already has `maxJobsPerOwner` unfinished jobs (nothing stored), rejects with what the store threw.
   */
  open(run: Run, traceCorrelationId: string, owner: string): Promise<RolloutJob | undefined>
  /** Stores the `running` record (a failure is logged); returns it. */
  start(run: Run, pending: RolloutJob): Promise<RolloutJob>
  /**
   * Turns a sync run into a job of `owner` under its own id: stores a `running` record and moves
   * the run to `detached`. Resolves with the record, or undefined (the run stays `running`) when
   * the owner's quota is full or the store refused.
   */
  detach(
    run: Run,
    traceCorrelationId: string,
    createdAt: number,
    requestId: string,
    owner: string,
  ): Promise<RolloutJob | undefined>
  /** Stores the final record of a job and makes the run final. */
  finish(run: Run, record: RolloutJob, outcome: Outcome): Promise<void>
  /**
   * Cancels the job with this id: the detached run in this process (waits until its final record
   * is stored), else through the store's `requestCancel` (the run may be on another task app).
   * False when there is nothing left to cancel.
   */
  cancel(id: string, reason: unknown): Promise<boolean>
}

/**
 * Unfinished jobs per owner, counted in this process: `take` reserves a slot (false when the owner
 * has `max` already), `release` frees the slot of a run once (later calls do nothing).
 */
function createQuota(max: number) {
  const perOwner = new Map<string, number>()
  const holders = new Map<string, string>() // run id → owner
  return {
    take(runId: string, owner: string): boolean {
      const held = perOwner.get(owner) ?? 0
      if (held >= max) return false
      perOwner.set(owner, held + 1)
      holders.set(runId, owner)
      return true
    },
    release(runId: string): void {
      const owner = holders.get(runId)
      if (owner === undefined) return
      holders.delete(runId)
      const held = (perOwner.get(owner) ?? 1) - 1
      if (held <= 0) perOwner.delete(owner)
      else perOwner.set(owner, held)
    },
  }
}

/** What {@link createJobs} needs. */
export interface JobsOptions {
  jobStore: JobStore
  runs: RunRegistry
  logger: TaskAppLogger
  /** `limits.maxJobsPerOwner`: unfinished jobs one owner may have at once. */
  maxJobsPerOwner: number
}

/**
 * Watches the store for the cancel of each job this process runs (from any task app sharing the
 * store) and aborts its run; `stop` ends the watch of a run.
 */
function createCancelWatch(jobStore: JobStore) {
  const unwatch = new Map<string, () => void>() // run id → stops watching the store for its cancel
  return {
    watch(run: Run): void {
      const stop = jobStore.onCancel?.(run.id, () => abortRun(run, cancelReason(run.id)))
      if (stop !== undefined) unwatch.set(run.id, stop)
    },
    stop(run: Run): void {
      unwatch.get(run.id)?.()
      unwatch.delete(run.id)
    },
  }
}

/** {@link Jobs.cancel}: aborts a detached run of this process, else cancels through the store. */
async function cancelJob(
  jobStore: JobStore,
  runs: RunRegistry,
  id: string,
  reason: unknown,
): Promise<boolean> {
  const run = runs.get(id)
  if (run?.state === 'detached') {
    abortRun(run, reason)
    await whenRun(run, () => isFinal(run.state))
    return true
  }
  if (jobStore.requestCancel === undefined) return false
  const outcome = await jobStore.requestCancel(id, cancellationOf(id, reason))
  return outcome?.changed === true
}

/** Creates the {@link Jobs} over a store and the run registry. */
export function createJobs({ jobStore, runs, logger, maxJobsPerOwner }: JobsOptions): Jobs {
  const quota = createQuota(maxJobsPerOwner)
  const cancels = createCancelWatch(jobStore)
  const warn = (obj: Record<string, unknown>, msg: string) => safeLog(logger, 'warn', obj, msg)
  /** Stores the first record of a job whose quota slot is taken; frees the slot when that fails. */
  const admit = async (run: Run, record: RolloutJob) => {
    try {
      await jobStore.put(record)
    } catch (err) {
      quota.release(run.id)
      throw err
    }
  }
  return {
    async open(run, traceCorrelationId, owner) {
      // Reserved before the first await, so concurrent requests cannot overshoot the quota.
      if (!quota.take(run.id, owner)) return undefined
      const record: RolloutJob = {
        id: run.id,
        status: 'pending',
        traceCorrelationId,
        owner,
        createdAt: Date.now(),
      }
      await admit(run, record)
      cancels.watch(run)
      return record
    },
    async start(run, pending) {
      const record: RolloutJob = { ...pending, status: 'running', startedAt: Date.now() }
      if (run.aborted) return record
      try {
        await jobStore.put(record)
      } catch (err) {
        warn({ err, jobId: run.id }, 'task-server: could not store the running job record')
      }
      return record
    },
    async detach(run, traceCorrelationId, createdAt, requestId, owner) {
      if (!quota.take(run.id, owner)) {
        warn(
          { requestId, limit: maxJobsPerOwner },
          'task-server: job quota reached; the sync-timeout rollout goes on as a sync call',
        )
        return undefined
      }
      const record: RolloutJob = {
        id: run.id,
        status: 'running',
        traceCorrelationId,
        owner,
        createdAt,
        startedAt: createdAt,
      }
      try {
        await admit(run, record)
      } catch (err) {
        warn({ err, requestId }, 'task-server: job store refused the sync-timeout job; still waiting')
        return undefined
      }
      runs.detach(run)
      cancels.watch(run)
      return record
    },
    async finish(run, base, outcome) {
      quota.release(run.id)
      cancels.stop(run)
      try {
        await jobStore.put(finalRecord(base, outcome))
      } catch (err) {
        safeLog(logger, 'error', { err, jobId: run.id }, 'task-server: could not store the final job record')
      } finally {
        runs.finish(run, finalStateOf(outcome))
      }
    },
    cancel: (id, reason) => cancelJob(jobStore, runs, id, reason),
  }
}
