/**
 * A pino-compatible logger: four levels, each `(obj, msg?)`. A pino logger fits as is.
 *
 * @example
 * ```ts
 * import pino from 'pino'
 * createTaskApp({ ...config, logger: pino() })
 * ```
 */
export interface TaskAppLogger {
  debug(obj: Record<string, unknown>, msg?: string): void
  info(obj: Record<string, unknown>, msg?: string): void
  warn(obj: Record<string, unknown>, msg?: string): void
  error(obj: Record<string, unknown>, msg?: string): void
}

const noop = (): void => {}

/** The default logger: writes nothing. */
export const silentLogger: TaskAppLogger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop })

/** Runs `fn` and swallows anything a user-supplied logger throws. */
export function safeLog(
  logger: TaskAppLogger,
  level: keyof TaskAppLogger,
  obj: Record<string, unknown>,
  msg: string,
): void {
  try {
    logger[level](obj, msg)
  } catch {
    // A broken logger must never break a request.
  }
}
