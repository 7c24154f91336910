import { TaskappError } from '@taskapp/core'

/** Stable codes of {@link JobsError}; match on `err.code`, never on the message. */
export const JobsErrorCode = {
  /** Bad options or config (the message names the field). */
  InvalidConfig: 'TASKAPP_ERR_JOBS_INVALID_CONFIG',
} as const

/** One of the {@link JobsErrorCode} values. */
export type JobsErrorCode = (typeof JobsErrorCode)[keyof typeof JobsErrorCode]

/** The one error family of `@taskapp/jobs`. */
export class JobsError extends TaskappError<JobsErrorCode> {
  static override readonly family: string = 'JobsError'
  override readonly name = 'JobsError'
}
