/**
 * `taskapp serve`'s running count on a TTY: one status line at the bottom of stderr,
 * `rollouts 42 · failures 1 · mean reward 0.81`, redrawn in place as rollouts end. Log lines and
 * progress lines written through {@link StatusLine.stream} clear it first and bring it back after.
 * Off a TTY it writes nothing (the task server's INFO summaries say the same in the log).
 */
import type { TaskAppStats } from '@taskapp/in-process'

/** Where the status line is drawn (stderr). */
export interface StatusStream {
  write(text: string): unknown
  readonly isTTY?: boolean
}

/** Erase the current terminal line and go to its start. */
const CLEAR_LINE = '\r\x1b[2K'

/** How often the count is read and, when it changed, redrawn. */
const DEFAULT_REFRESH_MS = 250

/**
 * The status text of a count: rollouts, failures, mean reward (two decimals, `–` before the
 * first completed rollout), and cancellations when there were any.
 *
 * @example
 * ```ts
 * formatStatus({ rollouts: 42, completed: 41, failed: 1, cancelled: 0, meanReward: 0.8123 })
 * // 'rollouts 42 · failures 1 · mean reward 0.81'
 * ```
 */
export function formatStatus(stats: TaskAppStats): string {
  const reward = stats.meanReward === undefined ? '–' : stats.meanReward.toFixed(2)
  const cancelled = stats.cancelled > 0 ? ` · cancelled ${stats.cancelled}` : ''
  return `rollouts ${stats.rollouts} · failures ${stats.failed} · mean reward ${reward}${cancelled}`
}

/**
 * One updating status line. Give {@link StatusLine.stream} to everything else that writes to the
 * same stream; call {@link StatusLine.start} once the app runs and {@link StatusLine.stop} before
 * it stops. Not a TTY, or not `enabled`: `stream` is the given stream and nothing is drawn.
 *
 * @example
 * ```ts
 * const status = new StatusLine(process.stderr, { enabled: true })
 * const logger = createCliLogger('info', { stdout: process.stdout, stderr: status.stream })
 * status.start(() => app.stats())
 * // ... on Ctrl+C:
 * status.stop()
 * ```
 */
export class StatusLine implements Disposable {
  /** The stream to write through: a write clears the status line and redraws it after a whole line. */
  readonly stream: StatusStream
  readonly #out: StatusStream
  readonly #active: boolean
  readonly #refreshMs: number
  #read: (() => TaskAppStats | undefined) | undefined
  #timer: NodeJS.Timeout | undefined
  /** The text on screen now ('' when the line is not shown). */
  #shown = ''
  /** Someone wrote a line without its newline yet: drawing now would break it. */
  #lineOpen = false

  constructor(out: StatusStream, options: { enabled: boolean; refreshMs?: number }) {
    this.#out = out
    this.#active = options.enabled && out.isTTY === true
    this.#refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS
    this.stream = this.#active ? { write: (text: string) => this.#write(text), isTTY: true } : out
  }

  /** Starts drawing the count `read` gives (nothing while it gives `undefined`). */
  start(read: () => TaskAppStats | undefined): void {
    if (!this.#active || this.#read !== undefined) return
    this.#read = read
    this.#draw()
    this.#timer = setInterval(() => this.#draw(), this.#refreshMs)
    this.#timer.unref()
  }

  /** Stops the updates and erases the line. Idempotent. */
  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#read = undefined
    this.#erase()
  }

  [Symbol.dispose](): void {
    this.stop()
  }

  #write(text: string): boolean {
    this.#erase()
    this.#out.write(text)
    if (text.length > 0) this.#lineOpen = !text.endsWith('\n')
    this.#draw()
    return true
  }

  #erase(): void {
    if (this.#shown === '') return
    this.#out.write(CLEAR_LINE)
    this.#shown = ''
  }

  #draw(): void {
    if (this.#read === undefined || this.#lineOpen) return
    const stats = this.#read()
    if (stats === undefined) return
    const text = formatStatus(stats)
    if (text === this.#shown) return
    this.#out.write(`${CLEAR_LINE}${text}`)
    this.#shown = text
  }
}
