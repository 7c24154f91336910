import { TaskappError } from '@taskapp/core'

/** Stable codes of {@link JobsError}; match on `err.code`, never on the message. */
export const JobsErrorCode = {
  /** Bad options or config (the message names the field). */
  InvalidConfig: 'TASKAPP_ERR_JOBS_INVALID_CONFIG',
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
} as const

/** One of the {@link JobsErrorCode} values. */
export type JobsErrorCode = (typeof JobsErrorCode)[keyof typeof JobsErrorCode]

/** The one error family of `@taskapp/jobs`. */
export class JobsError extends TaskappError<JobsErrorCode> {
  static override readonly family: string = 'JobsError'
  override readonly name = 'JobsError'
}
