import { TaskappError } from '@taskapp/core'
/** Stable codes of {@link SdkError}; each is listed in the README's Errors table. */
export const SdkErrorCode = {
  CliUsage: 'TASKAPP_ERR_CLI_USAGE',
  UnknownTunnelMode: 'TASKAPP_ERR_UNKNOWN_TUNNEL_MODE',
  /** `runInProcessJob` got a bad option (the message names it). */
  InvalidJobOptions: 'TASKAPP_ERR_INVALID_JOB_OPTIONS',
  /** The task app wants a credential a job cannot carry (a key the tunnel does not add, no container tokens). */
  JobTaskAppAuth: 'TASKAPP_ERR_JOB_TASK_APP_AUTH',
  /** SIGINT/SIGTERM stopped `runInProcessJob`: the job was cancelled and the task app stopped. */
  Interrupted: 'TASKAPP_ERR_INTERRUPTED',
} as const

/** One of the {@link SdkErrorCode} values. */
export type SdkErrorCode = (typeof SdkErrorCode)[keyof typeof SdkErrorCode]

/**
 * The one error family of `@taskapp/sdk` (its own code; everything it re-exports keeps its own
 * family). The CLI exits 2 on `TASKAPP_ERR_CLI_USAGE`.
 *
 * @example
 * ```ts
 * try {
 *   parseCommand(['serve', '--port', 'abc'])
 * } catch (err) {
 *   if (err instanceof SdkError && err.code === 'TASKAPP_ERR_CLI_USAGE') console.error(err.message)
 * }
 * ```
 */
export class SdkError extends TaskappError<SdkErrorCode> {
  static override readonly family: string = 'SdkError'
  override readonly name = 'SdkError'

  constructor(code: SdkErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options)
  }
}
