import { TaskappError } from '@taskapp/core'
/** Stable codes of {@link InProcessError}; match on `err.code`, never on the message. */
export const InProcessErrorCode = {
  InvalidOptions: 'TASKAPP_ERR_INVALID_OPTIONS',
  NoInput: 'TASKAPP_ERR_NO_INPUT',
  MultipleInputs: 'TASKAPP_ERR_MULTIPLE_INPUTS',
  InvalidPort: 'TASKAPP_ERR_INVALID_PORT',
  InvalidHost: 'TASKAPP_ERR_INVALID_HOST',
  TaskAppNotFound: 'TASKAPP_ERR_TASK_APP_NOT_FOUND',
  TaskAppInvalid: 'TASKAPP_ERR_TASK_APP_INVALID',
  TaskAppLoadFailed: 'TASKAPP_ERR_TASK_APP_LOAD_FAILED',
  TsxMissing: 'TASKAPP_ERR_TSX_MISSING',
  TunnelUnavailable: 'TASKAPP_ERR_TUNNEL_UNAVAILABLE',
  StartFailed: 'TASKAPP_ERR_START_FAILED',
  Aborted: 'TASKAPP_ERR_ABORTED',
  InvalidState: 'TASKAPP_ERR_INVALID_STATE',
  StopFailed: 'TASKAPP_ERR_STOP_FAILED',
} as const

/** One of the {@link InProcessErrorCode} values. */
export type InProcessErrorCode = (typeof InProcessErrorCode)[keyof typeof InProcessErrorCode]

/** The lifecycle step that failed, carried by `TASKAPP_ERR_START_FAILED`. */
export type StartStep = 'bind' | 'health' | 'tunnel' | 'verify' | 'onStart'

/**
 * The one error family of `@taskapp/in-process`. Invalid options throw before anything starts;
 * a failure after something started is `TASKAPP_ERR_START_FAILED` with the failing `step` and the
 * original error as `cause`.
 *
 * @example
 * ```ts
 * try {
 *   await InProcessTaskApp.start({ configFactory: buildConfig, tunnel: { mode: 'local' } })
 * } catch (err) {
 *   if (err instanceof InProcessError && err.code === 'TASKAPP_ERR_START_FAILED') console.error(err.step, err.cause)
 * }
 * ```
 */
export class InProcessError extends TaskappError<InProcessErrorCode> {
  static override readonly family: string = 'InProcessError'
  override readonly name = 'InProcessError'
  /** For `TASKAPP_ERR_START_FAILED`: the step that failed. */
  readonly step: StartStep | undefined

  constructor(
    code: InProcessErrorCode,
    message: string,
    options: { cause?: unknown; step?: StartStep } = {},
  ) {
    super(code, message, options)
    this.step = options.step
  }
}

export { messageOf } from '@taskapp/core'
