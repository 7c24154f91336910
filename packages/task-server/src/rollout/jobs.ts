/**
 * Rollout jobs: the records a run leaves in the {@link JobStore} as it goes from pending to a
 * final status, and their JSON view. No HTTP here: the routes send the answers.
 */
import type { JobStore, RolloutJob } from '../job-store'
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

/** The job side of the runs. */
export interface Jobs {
  /** Stores the `pending` record of an async run; rejects with what the store threw. */
  open(run: Run, traceCorrelationId: string): Promise<RolloutJob>
  /** Stores the `running` record (a failure is logged); returns it. */
  start(run: Run, pending: RolloutJob): Promise<RolloutJob>
  /**
   * Turns a sync run into a job under its own id: stores a `running` record and moves the run to
   * `detached`. Resolves with the record, or undefined (the run stays `running`) when the store refused.
   */
  detach(
    run: Run,
    traceCorrelationId: string,
    createdAt: number,
    requestId: string,
  ): Promise<RolloutJob | undefined>
  /** Stores the final record of a job and makes the run final. */
  finish(run: Run, record: RolloutJob, outcome: Outcome): Promise<void>
  /** Cancels the detached run with this id and waits until its final record is stored; false when there is none. */
  cancel(id: string, reason: unknown): Promise<boolean>
}

/** Creates the {@link Jobs} over a store and the run registry. */
export function createJobs(jobStore: JobStore, runs: RunRegistry, logger: TaskAppLogger): Jobs {
  return {
    async open(run, traceCorrelationId) {
      const record: RolloutJob = { id: run.id, status: 'pending', traceCorrelationId, createdAt: Date.now() }
      await jobStore.put(record)
      return record
    },
    async start(run, pending) {
      const record: RolloutJob = { ...pending, status: 'running', startedAt: Date.now() }
      if (run.aborted) return record
      try {
        await jobStore.put(record)
      } catch (err) {
        safeLog(logger, 'warn', { err, jobId: run.id }, 'task-server: could not store the running job record')
      }
      return record
    },
    async detach(run, traceCorrelationId, createdAt, requestId) {
      const record: RolloutJob = {
        id: run.id,
        status: 'running',
        traceCorrelationId,
        createdAt,
        startedAt: createdAt,
      }
      try {
        await jobStore.put(record)
      } catch (err) {
        safeLog(
          logger,
          'warn',
          { err, requestId },
          'task-server: job store refused the sync-timeout job; still waiting',
        )
        return undefined
      }
      runs.detach(run)
      return record
    },
    async finish(run, base, outcome) {
      const finishedAt = Date.now()
      const record: RolloutJob = outcome.ok
        ? { ...base, status: 'succeeded', finishedAt, result: outcome.response }
        : {
            ...base,
            status: outcome.jobStatus,
            finishedAt,
            error: { code: outcome.code, message: outcome.message, errorId: outcome.errorId },
          }
      try {
        await jobStore.put(record)
      } catch (err) {
        safeLog(logger, 'error', { err, jobId: run.id }, 'task-server: could not store the final job record')
      } finally {
        runs.finish(run, finalStateOf(outcome))
      }
    },
    async cancel(id, reason) {
      const run = runs.get(id)
      if (run?.state !== 'detached') return false
      abortRun(run, reason)
      await whenRun(run, () => isFinal(run.state))
      return true
    },
  }
}
