/**
 * How the line loggers (the CLI's, `InProcessTaskApp`'s default) show an `Error` in a record: its
 * name, message and code in the one-line fields, its stack (and its causes') on the lines below.
 * pino users get the same from pino's own `err` serializer.
 */

/** Causes followed below an error at most (a cycle or a deep chain stops here). */
const MAX_CAUSES = 3

/**
 * The one-line fields of an error: `name`, `message`, and `code` when it has one.
 *
 * @example
 * ```ts
 * JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? errorFields(v) : v))
 * ```
 */
export function errorFields(err: Error): { name: string; message: string; code?: unknown } {
  const code = (err as { code?: unknown }).code
  return code === undefined
    ? { name: err.name, message: err.message }
    : { name: err.name, message: err.message, code }
}

/** A cause that is not an Error, as text (`JSON` for plain data; never throws). */
function shown(value: unknown): string {
  if (typeof value === 'string') return value
  try {
    return JSON.stringify(value) ?? typeof value
  } catch {
    return typeof value
  }
}

/** The `at ...` frames of a stack, without the header lines that repeat the message. */
function frames(err: Error): string[] {
  const stack = typeof err.stack === 'string' ? err.stack : ''
  return stack.split('\n').filter((line) => /^\s+at /.test(line))
}

/**
 * The stack of `err` for the lines under a log line: its frames, then each `cause` (up to 3) as
 * `caused by: Name: message` with its own frames, every line indented by `indent`. Empty when
 * there are no frames to show.
 *
 * @example
 * ```ts
 * stderr.write(`[taskapp] ERROR the rollout handler threw {...}\n${errorStack(err)}`)
 * //     at rollout (/app/task-app.ts:12:11)
 * //     at ...
 * ```
 */
export function errorStack(err: Error, indent = '    '): string {
  const lines: string[] = frames(err).map((line) => `${indent}${line.trim()}`)
  let cause: unknown = err.cause
  for (let depth = 0; depth < MAX_CAUSES && cause !== undefined && cause !== null; depth++) {
    if (cause instanceof Error) {
      lines.push(`${indent}caused by: ${cause.name}: ${cause.message}`)
      for (const line of frames(cause)) lines.push(`${indent}  ${line.trim()}`)
      cause = cause.cause
    } else {
      lines.push(`${indent}caused by: ${shown(cause)}`)
      break
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`
}
