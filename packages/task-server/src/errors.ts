/**
 * Stable codes of {@link TaskServerError}. Match on `err.code`, never on the message.
 */
export type TaskServerErrorCode =
  | 'TASKAPP_ERR_INVALID_CONFIG'
  | 'TASKAPP_ERR_STARTUP_FAILED'
  | 'TASKAPP_ERR_SHUTDOWN_FAILED'
  | 'TASKAPP_ERR_ROLLOUT_FAILED'
  | 'TASKAPP_ERR_INVALID_ROLLOUT_RESPONSE'
  | 'TASKAPP_ERR_ROLLOUT_TIMEOUT'
  | 'TASKAPP_ERR_ROLLOUT_CANCELLED'
  | 'TASKAPP_ERR_JOB_STORE_FULL'
  | 'TASKAPP_ERR_MLFLOW_REQUEST_FAILED'

/**
 * The one error class of `@taskapp/task-server`. Thrown by `createTaskApp` (bad config), passed to
 * `lifecycle.ready()` / `lifecycle.close()` rejections, to the `onRolloutComplete` hook and to the
 * logger. The original error, when there is one, is in `cause`.
 *
 * @example
 * ```ts
 * try {
 *   createTaskApp(config)
 * } catch (err) {
 *   if (err instanceof TaskServerError && err.code === 'TASKAPP_ERR_INVALID_CONFIG') console.error(err.message)
 * }
 * ```
 */
export class TaskServerError extends Error {
  override readonly name = 'TaskServerError'
  /** Stable machine-readable code. */
  readonly code: TaskServerErrorCode

  constructor(code: TaskServerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/**
 * True when `err` is a {@link TaskServerError}, with the given code if one is passed.
 *
 * @example
 * ```ts
 * await app.lifecycle.ready().catch((err) => {
 *   if (isTaskServerError(err, 'TASKAPP_ERR_STARTUP_FAILED')) console.error('startup failed:', err.cause)
 * })
 * ```
 */
export function isTaskServerError(err: unknown, code?: TaskServerErrorCode): err is TaskServerError {
  return err instanceof TaskServerError && (code === undefined || err.code === code)
}
