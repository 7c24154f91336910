import { TaskappError } from '@taskapp/core'

/** Stable codes of {@link JobsError}; match on `err.code`, never on the message. */
export const JobsErrorCode = {
  /** Bad options or job config (the message names the field). */
  InvalidConfig: 'TASKAPP_ERR_JOBS_INVALID_CONFIG',
  /** `status()`, `events()`, `waitUntilComplete()`, `cancel()` or `result()` before `submit()`. */
  NotSubmitted: 'TASKAPP_ERR_JOBS_NOT_SUBMITTED',
  /** The backend refused the API key (HTTP 401 or 403). */
  Auth: 'TASKAPP_ERR_JOBS_AUTH',
  /** The backend answered HTTP 429: the account's usage limit is reached. */
  UsageLimit: 'TASKAPP_ERR_JOBS_USAGE_LIMIT',
  /** No answer from the backend (connection refused, DNS, a request past `requestTimeoutMs`). */
  BackendUnreachable: 'TASKAPP_ERR_JOBS_BACKEND_UNREACHABLE',
  /** The backend answered with another HTTP error, or a reply this client cannot read. */
  BackendError: 'TASKAPP_ERR_JOBS_BACKEND_ERROR',
  /** The job ended `failed`; the message carries the backend's. */
  JobFailed: 'TASKAPP_ERR_JOBS_JOB_FAILED',
  /** `waitUntilComplete` passed its `timeoutMs` (the job itself keeps running). */
  Timeout: 'TASKAPP_ERR_JOBS_TIMEOUT',
  /** The job ended `cancelled` (by `cancel()` or anyone else). */
  Cancelled: 'TASKAPP_ERR_JOBS_CANCELLED',
  // backend
  /** The local backend or the deterministic model could not listen on the host and port given. */
  ListenFailed: 'TASKAPP_ERR_JOBS_LISTEN_FAILED',
  /** A job asked for an algorithm the local backend does not run (MIPRO): the job fails at once. */
  UnsupportedAlgorithm: 'TASKAPP_ERR_JOBS_UNSUPPORTED_ALGORITHM',
  /** The task app refused or failed every rollout of an evaluation (auth, HTTP error, bad reply): the job fails. */
  RolloutFailed: 'TASKAPP_ERR_JOBS_ROLLOUT_FAILED',
  /** The task app's health check failed and the job's `rollout_health_check_mode` is `strict`. */
  TaskAppUnhealthy: 'TASKAPP_ERR_JOBS_TASK_APP_UNHEALTHY',
  /** The upstream model failed the reflection call that proposes a new prompt: the job fails. */
  ReflectionFailed: 'TASKAPP_ERR_JOBS_REFLECTION_FAILED',
  /** The job page (`/jobs/{id}`) or its event stream names a job the backend does not have (HTTP 404). */
  JobNotFound: 'TASKAPP_ERR_JOBS_JOB_NOT_FOUND',
  /** The job page was asked from off the backend's machine while the backend requires a key (HTTP 403). */
  PageForbidden: 'TASKAPP_ERR_JOBS_PAGE_FORBIDDEN',
} as const

/** One of the {@link JobsErrorCode} values. */
export type JobsErrorCode = (typeof JobsErrorCode)[keyof typeof JobsErrorCode]

/** Options of a {@link JobsError}. */
export interface JobsErrorOptions {
  /** The original error, when this one wraps it. */
  cause?: unknown
  /** The HTTP status behind the error, when there is one. */
  status?: number
  /** The job the error is about, once it has an id. */
  jobId?: string
}

/**
 * The one error family of `@taskapp/jobs`: a stable `code`, the HTTP `status` and the `jobId` when
 * known, and the original error as `cause`.
 *
 * @example
 * ```ts
 * import { JobsError, JobsErrorCode } from '@taskapp/jobs'
 *
 * try {
 *   await job.waitUntilComplete({ timeoutMs: 600_000 })
 * } catch (err) {
 *   if (err instanceof JobsError && err.code === JobsErrorCode.JobFailed) console.error(err.message)
 * }
 * ```
 */
export class JobsError extends TaskappError<JobsErrorCode> {
  static override readonly family: string = 'JobsError'
  override readonly name = 'JobsError'
  /** The HTTP status behind the error, when there is one. */
  readonly status: number | undefined
  /** The job the error is about, once it has an id. */
  readonly jobId: string | undefined

  constructor(code: JobsErrorCode, message: string, options: JobsErrorOptions = {}) {
    super(code, message, options)
    this.status = options.status
    this.jobId = options.jobId
  }
}

/** A `TASKAPP_ERR_JOBS_INVALID_CONFIG` with `message` (and `cause` when given). */
export function invalidConfig(message: string, cause?: unknown): JobsError {
  return new JobsError(JobsErrorCode.InvalidConfig, message, cause === undefined ? {} : { cause })
}
