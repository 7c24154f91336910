/** Requests and errors of one tunnel in the last minutes: one bucket per minute, five minutes kept. */

/** Minutes the rolling counters remember. */
export const WINDOW_MINUTES = 5

/** Requests and errors over 1-minute buckets, the last {@link WINDOW_MINUTES} minutes. */
export class RollingCounts {
  private readonly minutes = new Array<number>(WINDOW_MINUTES).fill(-1)
  private readonly requests = new Array<number>(WINDOW_MINUTES).fill(0)
  private readonly errors = new Array<number>(WINDOW_MINUTES).fill(0)
  /** When the last request was counted (epoch ms). */
  lastAt = 0

  /** Count one answer at `now` (epoch ms); `error` when it counts as one. */
  add(now: number, error: boolean): void {
    const minute = Math.floor(now / 60_000)
    const i = minute % WINDOW_MINUTES
    if (this.minutes[i] !== minute) {
      this.minutes[i] = minute
      this.requests[i] = 0
      this.errors[i] = 0
    }
    this.requests[i]! += 1
    if (error) this.errors[i]! += 1
    this.lastAt = now
  }

  /** Requests and errors in the last `span` minutes (the current one included) at `now`. */
  sum(now: number, span: number = WINDOW_MINUTES): { requests: number; errors: number } {
    const minute = Math.floor(now / 60_000)
    let requests = 0
    let errors = 0
    for (let i = 0; i < WINDOW_MINUTES; i++) {
      const m = this.minutes[i]!
      if (m > minute - span && m <= minute) {
        requests += this.requests[i]!
        errors += this.errors[i]!
      }
    }
    return { requests, errors }
  }
}
