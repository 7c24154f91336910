/**
 * Where async rollout jobs live: an interface, and a bounded in-memory default.
 */
import { createCancelListeners } from './cancel-listeners'
import { TaskServerError } from './errors'
import type { RolloutResponseOutput } from './schemas'

/** Status of a rollout job. `succeeded`, `failed` and `cancelled` are final. */
export type RolloutJobStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled'

/** A rollout job as the store keeps it. Times are epoch milliseconds. */
export interface RolloutJob {
  readonly id: string
  readonly status: RolloutJobStatus
  readonly traceCorrelationId: string
  /**
   * Who created the job: `key:<hash of the API key>`, `container:<token issuer>` or `anonymous`.
   * Only the same owner can read or cancel it; a store must keep this field as it is.
   */
  readonly owner?: string
  readonly createdAt: number
  readonly startedAt?: number
  readonly finishedAt?: number
  /** The validated response of a `succeeded` job. */
  readonly result?: RolloutResponseOutput
  /** Why a `failed` or `cancelled` job ended (wire code, safe message, error id). */
  readonly error?: { readonly code: string; readonly message: string; readonly errorId?: string }
}

/**
 * What a cancel lays over a job's record (whose status becomes `cancelled`): when it ended, and why.
 * Not exported by the package: read it as the second parameter of `requestCancel`.
 */
export interface JobCancellation {
  readonly finishedAt: number
  readonly error: NonNullable<RolloutJob['error']>
}

/** The outcome of `requestCancel`: the stored record, and whether this call cancelled it. */
export type CancelOutcome = { readonly job: RolloutJob; readonly changed: boolean } | undefined

/** True for `succeeded`, `failed` and `cancelled`. */
export function isFinalStatus(status: RolloutJobStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled'
}

/**
 * Storage for rollout jobs. The app calls `put` with a fresh record on every state change and
 * `get` to answer `GET /rollouts/:id`. A store may drop finished jobs whenever it likes, but must
 * keep a job that is not final. `put` of a new job may throw `TASKAPP_ERR_JOB_STORE_FULL`; the
 * caller then gets 503 `job_store_full`.
 *
 * @example
 * ```ts
 * const jobs = new Map<string, RolloutJob>()
 * const store: JobStore = { put: (job) => void jobs.set(job.id, job), get: (id) => jobs.get(id) }
 * ```
 */
export interface JobStore {
  /**
   * Adds a job or replaces the record with the same id. The built-in stores keep a final record
   * once they hold one: a later `put` of that id does nothing (so a cancel is never overwritten).
   */
  put(job: RolloutJob): void | Promise<void>
  /** The job with this id, or `undefined` when unknown or evicted. */
  get(id: string): RolloutJob | undefined | Promise<RolloutJob | undefined>
  /**
   * Cancels a job that is not final, for every task app sharing the store, in one atomic step:
   * the record becomes `{ ...current, status: 'cancelled', finishedAt, error }` and the
   * {@link JobStore.onCancel} watchers of that id are told, in any process. Resolves with the
   * stored record and whether this call changed it (false: the job was already final, its record
   * is left as it is), or `undefined` for an unknown id. Optional: without it a job can only be
   * cancelled on the task app that runs it.
   */
  requestCancel?(id: string, cancellation: JobCancellation): Promise<CancelOutcome>
  /**
   * Calls `listener` once when the job is cancelled through {@link JobStore.requestCancel} (by any
   * task app sharing the store), or soon after the call when it already is. Returns a function
   * that stops watching. The task app watches each job it runs until the job is final.
   */
  onCancel?(id: string, listener: () => void): () => void
  /** Releases timers and connections. `lifecycle.close()` calls it only on the default store it created. */
  close?(): void | Promise<void>
}

/** Options of {@link createMemoryJobStore}. */
export interface MemoryJobStoreOptions {
  /**
   * Most jobs kept at once. When full, the oldest finished job of the new job's owner is evicted,
   * else the oldest finished job of anyone; when every job is still running, `put` of a new job
   * throws `TASKAPP_ERR_JOB_STORE_FULL`.
   * @default 1000
   */
  maxJobs?: number
  /**
   * How long a finished job stays readable, in milliseconds.
   * @default 600000 (10 minutes)
   */
  ttlMs?: number
}

/**
 * The in-memory job store: bounded, evicts finished jobs after a TTL (timers unref'd) or when full
 * (the new job's owner's first), never a running one.
 */
export interface MemoryJobStore extends JobStore, AsyncDisposable {
  /** Number of jobs held. */
  readonly size: number
  put(job: RolloutJob): void
  get(id: string): RolloutJob | undefined
  requestCancel(id: string, cancellation: JobCancellation): Promise<CancelOutcome>
  onCancel(id: string, listener: () => void): () => void
  /** Clears every eviction timer, forgets all jobs and watchers. */
  close(): Promise<void>
}

/** `TASKAPP_ERR_JOB_STORE_FULL`: every one of `maxJobs` jobs is still running. @internal */
export function jobStoreFull(maxJobs: number): TaskServerError {
  return new TaskServerError(
    'TASKAPP_ERR_JOB_STORE_FULL',
    `The job store holds ${maxJobs} running jobs; wait for some to finish or raise maxJobs.`,
  )
}

/**
 * `maxJobs` and `ttlMs` with their defaults, checked (`TASKAPP_ERR_INVALID_CONFIG`).
 * @internal shared by the memory and Redis stores.
 */
export function resolveStoreLimits(options: MemoryJobStoreOptions): { maxJobs: number; ttlMs: number } {
  const maxJobs = options.maxJobs ?? 1000
  const ttlMs = options.ttlMs ?? 600_000
  if (!Number.isInteger(maxJobs) || maxJobs < 1) {
    throw new TaskServerError(
      'TASKAPP_ERR_INVALID_CONFIG',
      `maxJobs must be a positive integer (got ${String(maxJobs)}).`,
    )
  }
  if (typeof ttlMs !== 'number' || !(ttlMs >= 0) || !Number.isFinite(ttlMs)) {
    throw new TaskServerError(
      'TASKAPP_ERR_INVALID_CONFIG',
      `ttlMs must be a finite number >= 0 (got ${String(ttlMs)}).`,
    )
  }
  return { maxJobs, ttlMs }
}

/**
 * Creates the default bounded in-memory {@link JobStore}.
 *
 * @example
 * ```ts
 * const app = createTaskApp({ ...config, jobStore: createMemoryJobStore({ maxJobs: 100, ttlMs: 60_000 }) })
 * ```
 */
export function createMemoryJobStore(options: MemoryJobStoreOptions = {}): MemoryJobStore {
  const { maxJobs, ttlMs } = resolveStoreLimits(options)
  const jobs = createMemoryRecords(maxJobs, ttlMs)
  const watchers = createCancelListeners()
  jobs.onForget = (id) => watchers.forget(id)

  const close = async () => {
    jobs.clear()
    watchers.clear()
  }

  return {
    get size() {
      return jobs.size
    },
    put: (job) => jobs.put(job),
    get: (id) => jobs.get(id),
    async requestCancel(id, { finishedAt, error }) {
      const current = jobs.get(id)
      if (current === undefined) return undefined
      if (isFinalStatus(current.status)) return { job: current, changed: false }
      const job: RolloutJob = { ...current, status: 'cancelled', finishedAt, error }
      jobs.put(job)
      watchers.fire(id)
      return { job, changed: true }
    },
    onCancel(id, listener) {
      if (jobs.get(id)?.status === 'cancelled') {
        queueMicrotask(listener)
        return () => {}
      }
      return watchers.add(id, listener)
    },
    close,
    [Symbol.asyncDispose]: close,
  }
}

/**
 * The records of the memory store: bounded by `maxJobs` (eviction as documented on
 * {@link MemoryJobStoreOptions.maxJobs}), finished ones forgotten `ttlMs` after they end.
 */
function createMemoryRecords(maxJobs: number, ttlMs: number) {
  const jobs = new Map<string, RolloutJob>()
  const timers = new Map<string, ReturnType<typeof setTimeout>>()

  const forget = (id: string) => {
    const timer = timers.get(id)
    if (timer !== undefined) clearTimeout(timer)
    timers.delete(id)
    jobs.delete(id)
    records.onForget(id)
  }

  /**
   * Makes room for a job of `owner`: evicts that owner's oldest finished job, else the oldest
   * finished job of anyone, so a caller churning through jobs evicts its own results first.
   */
  const evictOldestFinished = (owner: string | undefined): boolean => {
    let oldest: string | undefined
    for (const [id, job] of jobs) {
      if (!isFinalStatus(job.status)) continue
      if (job.owner === owner) {
        oldest = id
        break
      }
      oldest ??= id
    }
    if (oldest === undefined) return false
    forget(oldest)
    return true
  }

  const records = {
    /** Called with the id of each job evicted or expired. */
    onForget: (_id: string): void => {},
    get size() {
      return jobs.size
    },
    get: (id: string): RolloutJob | undefined => jobs.get(id),
    put(job: RolloutJob): void {
      const current = jobs.get(job.id)
      if (current !== undefined && isFinalStatus(current.status)) return
      if (current === undefined && jobs.size >= maxJobs && !evictOldestFinished(job.owner)) {
        throw jobStoreFull(maxJobs)
      }
      jobs.set(job.id, { ...job })
      if (isFinalStatus(job.status) && !timers.has(job.id)) {
        // Reached at call time, so fake timers work in tests.
        const timer = globalThis.setTimeout(() => forget(job.id), ttlMs)
        timer.unref()
        timers.set(job.id, timer)
      }
    },
    /** Clears every timer and forgets every job. */
    clear(): void {
      for (const timer of timers.values()) clearTimeout(timer)
      timers.clear()
      jobs.clear()
    },
  }
  return records
}
