/** Stable codes of {@link HealthCheckError}. */
export type HealthCheckErrorCode =
  | 'TASKAPP_ERR_HEALTH_TIMEOUT'
  | 'TASKAPP_ERR_HEALTH_UNAUTHORIZED'
  | 'TASKAPP_ERR_INVALID_URL'
  | 'TASKAPP_ERR_INVALID_OPTIONS'

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
export class HealthCheckError extends Error {
  override readonly name = 'HealthCheckError'
  /** Stable code. */
  readonly code: HealthCheckErrorCode
  /** The URL probed. */
  readonly url: string | undefined
  /** Probes made. */
  readonly attempts: number
  /** What the last probe saw. */
  readonly last: LastProbe | undefined

  constructor(
    code: HealthCheckErrorCode,
    message: string,
    options: { cause?: unknown; url?: string; attempts?: number; last?: LastProbe } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.url = options.url
    this.attempts = options.attempts ?? 0
    this.last = options.last
  }
}
