import type { Logger, LogLevel } from '@taskapp/core'

/** One call a {@link RecordingLogger} received. */
export interface LogRecord {
  level: LogLevel
  obj: Record<string, unknown>
  msg: string | undefined
}

/** A {@link Logger} that keeps every call in `records`, oldest first. */
export interface RecordingLogger extends Logger {
  readonly records: LogRecord[]
}

/**
 * A logger for tests: implements `Logger` from `@taskapp/core` (every level enabled) and
 * records each call, so a test can assert on what was logged.
 *
 * @example
 * ```ts
 * const logger = recordingLogger()
 * await using app = await InProcessTaskApp.start({ app, port: 0, logger })
 * expect(logger.records).toContainEqual(expect.objectContaining({ level: 'info' }))
 * ```
 */
export function recordingLogger(): RecordingLogger {
  const records: LogRecord[] = []
  const at =
    (level: LogLevel) =>
    (obj: Record<string, unknown>, msg?: string): void => {
      records.push({ level, obj, msg })
    }
  return { records, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}
