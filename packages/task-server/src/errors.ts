import { TaskappError } from '@taskapp/core'
/**
 * Stable codes of {@link TaskServerError}. Match on `err.code`, never on the message.
 */
export const TaskServerErrorCode = {
  InvalidConfig: 'TASKAPP_ERR_INVALID_CONFIG',
  StartupFailed: 'TASKAPP_ERR_STARTUP_FAILED',
  ShutdownFailed: 'TASKAPP_ERR_SHUTDOWN_FAILED',
  RolloutFailed: 'TASKAPP_ERR_ROLLOUT_FAILED',
  InvalidRolloutResponse: 'TASKAPP_ERR_INVALID_ROLLOUT_RESPONSE',
  RolloutTimeout: 'TASKAPP_ERR_ROLLOUT_TIMEOUT',
  RolloutCancelled: 'TASKAPP_ERR_ROLLOUT_CANCELLED',
  JobStoreFull: 'TASKAPP_ERR_JOB_STORE_FULL',
  JobStoreUnavailable: 'TASKAPP_ERR_JOB_STORE_UNAVAILABLE',
  JobStoreClosed: 'TASKAPP_ERR_JOB_STORE_CLOSED',
  JobRecordCorrupt: 'TASKAPP_ERR_JOB_RECORD_CORRUPT',
  IoredisMissing: 'TASKAPP_ERR_IOREDIS_MISSING',
  MlflowRequestFailed: 'TASKAPP_ERR_MLFLOW_REQUEST_FAILED',
  InvalidContainerKey: 'TASKAPP_ERR_INVALID_CONTAINER_KEY',
} as const

/** One of the {@link TaskServerErrorCode} values. */
export type TaskServerErrorCode = (typeof TaskServerErrorCode)[keyof typeof TaskServerErrorCode]

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
export class TaskServerError extends TaskappError<TaskServerErrorCode> {
  static override readonly family: string = 'TaskServerError'
  override readonly name = 'TaskServerError'

  constructor(code: TaskServerErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options)
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
