/** Stable codes of {@link InProcessError}; match on `err.code`, never on the message. */
export type InProcessErrorCode =
  | 'TASKAPP_ERR_INVALID_OPTIONS'
  | 'TASKAPP_ERR_NO_INPUT'
  | 'TASKAPP_ERR_MULTIPLE_INPUTS'
  | 'TASKAPP_ERR_INVALID_PORT'
  | 'TASKAPP_ERR_INVALID_HOST'
  | 'TASKAPP_ERR_TASK_APP_NOT_FOUND'
  | 'TASKAPP_ERR_TASK_APP_INVALID'
  | 'TASKAPP_ERR_TASK_APP_LOAD_FAILED'
  | 'TASKAPP_ERR_TUNNEL_UNAVAILABLE'
  | 'TASKAPP_ERR_START_FAILED'
  | 'TASKAPP_ERR_ABORTED'
  | 'TASKAPP_ERR_INVALID_STATE'
  | 'TASKAPP_ERR_STOP_FAILED'

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
 *   await InProcessTaskApp.start({ configFactory: buildConfig, tunnelMode: 'local' })
 * } catch (err) {
 *   if (err instanceof InProcessError && err.code === 'TASKAPP_ERR_START_FAILED') console.error(err.step, err.cause)
 * }
 * ```
 */
export class InProcessError extends Error {
  override readonly name = 'InProcessError'
  /** Stable code. */
  readonly code: InProcessErrorCode
  /** For `TASKAPP_ERR_START_FAILED`: the step that failed. */
  readonly step: StartStep | undefined

  constructor(
    code: InProcessErrorCode,
    message: string,
    options: { cause?: unknown; step?: StartStep } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.step = options.step
  }
}

/** The message of anything thrown, for wrapping. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
