/**
 * The one logger shape every taskapp package accepts: pino's (object first, message second).
 */

/** Log levels, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/**
 * A pino-compatible logger: four levels, each `(obj, msg?)`. A pino logger fits as is. When it has
 * pino's `isLevelEnabled(level)` and that says `false`, hot paths skip building the record.
 *
 * @example
 * ```ts
 * import pino from 'pino'
 * await InProcessTaskApp.start({ configFactory: buildConfig, logger: pino() })
 * ```
 */
export interface Logger {
  debug(obj: Record<string, unknown>, msg?: string): void
  info(obj: Record<string, unknown>, msg?: string): void
  warn(obj: Record<string, unknown>, msg?: string): void
  error(obj: Record<string, unknown>, msg?: string): void
  /** pino's level check; absent means every level is wanted. */
  isLevelEnabled?(level: string): boolean
}

const noop = (): void => {}

/**
 * A logger that drops everything.
 *
 * @example
 * ```ts
 * createTaskApp({ ...config, logger: silentLogger })
 * ```
 */
export const silentLogger: Logger = Object.freeze({
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  isLevelEnabled: () => false,
})

/**
 * Whether `logger` wants records of `level` (so a hot path can skip building them).
 *
 * @example
 * ```ts
 * if (levelEnabled(logger, 'debug')) logger.debug({ rid, bytes }, 'request')
 * ```
 */
export function levelEnabled(logger: Logger, level: LogLevel): boolean {
  return logger.isLevelEnabled?.(level) ?? true
}

/**
 * Calls the logger and swallows anything it throws: a broken user logger must never break a
 * request or a lifecycle step.
 *
 * @example
 * ```ts
 * safeLog(logger, 'warn', { port }, 'port busy, trying the next one')
 * ```
 */
export function safeLog(logger: Logger, level: LogLevel, obj: Record<string, unknown>, msg: string): void {
  try {
    logger[level](obj, msg)
  } catch {
    // ignored on purpose
  }
}
