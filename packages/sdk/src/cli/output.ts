/**
 * CLI output: a pino-compatible logger for stderr (secrets shortened to a prefix), and the
 * small writer interface every command prints through (so tests can capture it).
 */
import { errorFields, errorStack } from '@taskapp/core'
import type { LogLevel } from './args'

/** Where a command writes: stdout for results, stderr for progress and logs. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean }
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean }
}

/** A pino-compatible logger (what `InProcessTaskApp`, the relay and the task server accept). */
export interface CliLogger {
  debug(obj: Record<string, unknown>, msg?: string): void
  info(obj: Record<string, unknown>, msg?: string): void
  warn(obj: Record<string, unknown>, msg?: string): void
  error(obj: Record<string, unknown>, msg?: string): void
  child(bindings: Record<string, unknown>): CliLogger
  /** Whether records of `level` are written (pino's name), so callers skip building them. */
  isLevelEnabled(level: string): boolean
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 }
const SECRET_KEY = /key|token|secret|password|authorization|cookie/i

/**
 * A secret shortened to a prefix for logs (`sk-l…`); short secrets show nothing at all.
 *
 * @example
 * ```ts
 * redactSecret('sk-live-123456') // 'sk-l…'
 * ```
 */
export function redactSecret(secret: string | undefined): string {
  if (secret === undefined || secret === '') return '<unset>'
  if (secret.length <= 8) return '…'
  return `${secret.slice(0, 4)}…`
}

/** `value` with secret-looking fields shortened; errors become name/message/code and go to `errors`. */
function redactFields(value: unknown, errors: Error[], depth = 0): unknown {
  if (value instanceof Error) {
    errors.push(value)
    return errorFields(value)
  }
  if (value === null || typeof value !== 'object' || depth > 4) return value
  if (Array.isArray(value)) return value.map((v) => redactFields(v, errors, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      SECRET_KEY.test(k) && typeof v === 'string' ? redactSecret(v) : redactFields(v, errors, depth + 1)
  }
  return out
}

/** ` {json}` of the fields, then the stack of each error in them on the lines below. */
function format(obj: Record<string, unknown>): { json: string; stacks: string } {
  if (Object.keys(obj).length === 0) return { json: '', stacks: '' }
  const errors: Error[] = []
  try {
    const json = ` ${JSON.stringify(redactFields(obj, errors))}`
    return { json, stacks: errors.map((e) => errorStack(e)).join('') }
  } catch {
    return { json: '', stacks: '' }
  }
}

/**
 * A logger writing one line per record to `io.stderr` (`[taskapp] INFO message {"k":"v"}`),
 * dropping records below `level`, with the stack of each error in the record on the lines below
 * (indented `at ...` lines, then its causes). Fields whose name looks secret (key, token,
 * authorization, ...) are shortened to a prefix.
 *
 * @example
 * ```ts
 * const logger = createCliLogger('debug', { stdout: process.stdout, stderr: process.stderr })
 * logger.info({ port: 8114 }, 'listening')
 * ```
 */
export function createCliLogger(
  level: LogLevel,
  io: CliIo,
  bindings: Record<string, unknown> = {},
): CliLogger {
  const threshold = ORDER[level]
  const emit = (lvl: Exclude<LogLevel, 'silent'>, obj: Record<string, unknown>, msg?: string): void => {
    if (ORDER[lvl] < threshold) return
    const { json, stacks } = format({ ...bindings, ...(obj ?? {}) })
    io.stderr.write(`[taskapp] ${lvl.toUpperCase()} ${msg ?? ''}${json}\n${stacks}`)
  }
  return {
    debug: (obj, msg) => emit('debug', obj, msg),
    info: (obj, msg) => emit('info', obj, msg),
    warn: (obj, msg) => emit('warn', obj, msg),
    error: (obj, msg) => emit('error', obj, msg),
    child: (more) => createCliLogger(level, io, { ...bindings, ...more }),
    isLevelEnabled: (lvl) => lvl in ORDER && lvl !== 'silent' && ORDER[lvl as LogLevel] >= threshold,
  }
}

/**
 * Progress on stderr while something slow runs: a line when a step starts and one when it
 * ends with its duration. On a TTY an elapsed-seconds ticker redraws the current line.
 */
export class Progress {
  readonly #io: CliIo
  readonly #enabled: boolean
  #step: { label: string; started: number } | undefined
  #ticker: NodeJS.Timeout | undefined

  constructor(io: CliIo, enabled: boolean) {
    this.#io = io
    this.#enabled = enabled
  }

  /** Starts a step (ends the previous one first). */
  step(label: string): void {
    this.done()
    if (!this.#enabled) return
    this.#step = { label, started: performance.now() }
    if (this.#io.stderr.isTTY === true) {
      this.#io.stderr.write(`… ${label}`)
      this.#ticker = setInterval(() => {
        if (this.#step === undefined) return
        const s = ((performance.now() - this.#step.started) / 1000).toFixed(1)
        this.#io.stderr.write(`\r… ${this.#step.label} (${s} s)`)
      }, 250)
      this.#ticker.unref()
    } else {
      this.#io.stderr.write(`… ${label}\n`)
    }
  }

  /** Ends the current step with a check mark and its duration. */
  done(detail?: string): void {
    this.#stopTicker()
    const step = this.#step
    this.#step = undefined
    if (step === undefined || !this.#enabled) return
    const ms = Math.round(performance.now() - step.started)
    const line = `✓ ${step.label}${detail ? `: ${detail}` : ''} (${ms} ms)`
    this.#io.stderr.write(this.#io.stderr.isTTY === true ? `\r\x1b[2K${line}\n` : `${line}\n`)
  }

  /**
   * Ends the current step as failed: `✗ <label>: <reason>`. With `always`, the line is written
   * even when progress is off (a failure must be seen), naming `label` when no step runs.
   */
  fail(reason: string, options: { readonly always?: boolean; readonly label?: string } = {}): void {
    this.#stopTicker()
    const label = this.#step?.label ?? options.label
    this.#step = undefined
    if (label === undefined || (!this.#enabled && options.always !== true)) return
    const line = `✗ ${label}: ${reason}`
    this.#io.stderr.write(this.#io.stderr.isTTY === true ? `\r\x1b[2K${line}\n` : `${line}\n`)
  }

  /** A line about the current step (`· port 8114 is taken ...`); on a TTY the step line is redrawn below it. */
  note(text: string): void {
    if (!this.#enabled) return
    const step = this.#step
    if (this.#io.stderr.isTTY === true && step !== undefined) {
      this.#io.stderr.write(`\r\x1b[2K· ${text}\n… ${step.label}`)
    } else {
      this.#io.stderr.write(`· ${text}\n`)
    }
  }

  #stopTicker(): void {
    if (this.#ticker !== undefined) clearInterval(this.#ticker)
    this.#ticker = undefined
  }
}
