import { errorFields, errorStack, type Logger } from '@taskapp/core'

export type { Logger } from '@taskapp/core'
export { redact } from '@taskapp/core'

/** The record as ` {json}` (errors as name, message, code), and the errors met on the way. */
function stringify(obj: Record<string, unknown>): { json: string; errors: Error[] } {
  const errors: Error[] = []
  if (Object.keys(obj).length === 0) return { json: '', errors }
  try {
    const json = JSON.stringify(obj, (_key, value: unknown) => {
      if (!(value instanceof Error)) return value
      errors.push(value)
      return errorFields(value)
    })
    return { json: ` ${json}`, errors }
  } catch {
    return { json: '', errors: [] }
  }
}

function writeLine(level: 'WARN' | 'ERROR', obj: Record<string, unknown>, msg?: string): void {
  const { json, errors } = stringify(obj)
  process.stderr.write(`[taskapp] ${level} ${msg ?? ''}${json}\n${errors.map((e) => errorStack(e)).join('')}`)
}

const noop = (): void => {}

/**
 * The default logger: WARN and ERROR go to stderr as one line each
 * (`[taskapp] WARN <message> {json}`), followed by the stack of each error in the record
 * (indented `at ...` lines, then its causes); DEBUG and INFO are dropped (and reported disabled
 * by `isLevelEnabled`, so nothing builds them).
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
  isLevelEnabled: (level: string) => level === 'warn' || level === 'error',
})
