import type { Logger } from '@taskapp/core'

export type { Logger } from '@taskapp/core'
export { redact } from '@taskapp/core'

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
