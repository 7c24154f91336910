import { TaskappError } from '@taskapp/core'
/** Stable codes of {@link HealthCheckError}. */
export const HealthCheckErrorCode = {
  HealthTimeout: 'TASKAPP_ERR_HEALTH_TIMEOUT',
  HealthUnauthorized: 'TASKAPP_ERR_HEALTH_UNAUTHORIZED',
  InvalidUrl: 'TASKAPP_ERR_INVALID_URL',
  InvalidOptions: 'TASKAPP_ERR_INVALID_OPTIONS',
} as const

/** One of the {@link HealthCheckErrorCode} values. */
export type HealthCheckErrorCode = (typeof HealthCheckErrorCode)[keyof typeof HealthCheckErrorCode]

/** What the last probe saw, carried by a {@link HealthCheckError}. */
export interface LastProbe {
  /** HTTP status of the last answer, or `undefined` if no answer came. */
  readonly status: number | undefined
  /** The last body, trimmed to 200 characters. */
  readonly body: string | undefined
  /** The last connection error (`ECONNREFUSED`, a reset, a per-request timeout), if any. */
  readonly error: string | undefined
}

/**
 * The one error family of `@taskapp/health-checker`.
 *
 * @example
 * try { await waitForHealthy(url, { timeoutMs: 5000 }) }
 * catch (err) { if (err instanceof HealthCheckError && err.code === 'TASKAPP_ERR_HEALTH_TIMEOUT') console.log(err.last) }
 */
export class HealthCheckError extends TaskappError<HealthCheckErrorCode> {
  static override readonly family: string = 'HealthCheckError'
  override readonly name = 'HealthCheckError'
  /** The URL probed. */
  readonly url: string | undefined
  /** Probes made. */
  readonly attempts: number
  /** What the last probe saw. */
  readonly last: LastProbe | undefined
  /**
   * For `TASKAPP_ERR_HEALTH_TIMEOUT`: the deadline that passed, in ms. With `url`, `attempts` and
   * `last`, a caller can word the error in its own terms (`--timeout` in the `taskapp` CLI).
   */
  readonly timeoutMs: number | undefined

  constructor(
    code: HealthCheckErrorCode,
    message: string,
    options: { cause?: unknown; url?: string; attempts?: number; last?: LastProbe; timeoutMs?: number } = {},
  ) {
    super(code, message, options)
    this.url = options.url
    this.attempts = options.attempts ?? 0
    this.last = options.last
    this.timeoutMs = options.timeoutMs
  }
}
