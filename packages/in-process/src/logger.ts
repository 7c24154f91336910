/**
 * A pino-compatible logger: four levels, each `(obj, msg?)`. A pino logger fits as is.
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
}

function stringify(obj: Record<string, unknown>): string {
  const keys = Object.keys(obj)
  if (keys.length === 0) return ''
  try {
    return ` ${JSON.stringify(obj, (_key, value: unknown) =>
      value instanceof Error
        ? { name: value.name, message: value.message, code: (value as { code?: unknown }).code }
        : value,
    )}`
  } catch {
    return ''
  }
}

function writeLine(level: 'WARN' | 'ERROR', obj: Record<string, unknown>, msg?: string): void {
  process.stderr.write(`[taskapp] ${level} ${msg ?? ''}${stringify(obj)}\n`)
}

const noop = (): void => {}

/**
 * The default logger: WARN and ERROR go to stderr as one line each
 * (`[taskapp] WARN <message> {json}`); DEBUG and INFO are dropped.
 *
 * @example
 * ```ts
 * defaultLogger.warn({ port: 8114 }, 'port busy') // stderr: [taskapp] WARN port busy {"port":8114}
 * ```
 */
export const defaultLogger: Logger = Object.freeze({
  debug: noop,
  info: noop,
  warn: (obj: Record<string, unknown>, msg?: string) => writeLine('WARN', obj, msg),
  error: (obj: Record<string, unknown>, msg?: string) => writeLine('ERROR', obj, msg),
})

/** Calls the logger and swallows anything it throws: a broken logger must not break the lifecycle. */
export function safeLog(
  logger: Logger,
  level: keyof Logger,
  obj: Record<string, unknown>,
  msg: string,
): void {
  try {
    logger[level](obj, msg)
  } catch {
    // ignored on purpose
  }
}

/**
 * A secret reduced to a short prefix for logs: `sk_abc…`. Never log a key in full.
 *
 * @example
 * ```ts
 * redact('sk_live_1234567890') // 'sk_l…'
 * ```
 */
export function redact(secret: string | undefined): string {
  if (!secret) return '<unset>'
  if (secret.length <= 8) return '…'
  return `${secret.slice(0, 4)}…`
}
