/**
 * Failed admin logins per client address: after {@link MAX_FAILURES} wrong keys within a minute,
 * that address is refused (429) until the minute is over. Bounded: at most {@link MAX_TRACKED}
 * addresses are remembered (the oldest window is forgotten first).
 */
const WINDOW_MS = 60_000
const MAX_FAILURES = 5
const MAX_TRACKED = 1_000

export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; until: number }>()

  constructor(private readonly now: () => number = Date.now) {}

  /** Milliseconds `address` must still wait, or 0 when it may try. */
  waitMs(address: string): number {
    const entry = this.failures.get(address)
    if (entry === undefined) return 0
    const left = entry.until - this.now()
    if (left <= 0) {
      this.failures.delete(address)
      return 0
    }
    return entry.count >= MAX_FAILURES ? left : 0
  }

  /** A wrong key from `address`. */
  failed(address: string): void {
    const now = this.now()
    const entry = this.failures.get(address)
    if (entry !== undefined && entry.until > now) {
      entry.count += 1
      return
    }
    this.failures.delete(address)
    if (this.failures.size >= MAX_TRACKED) this.failures.delete(this.failures.keys().next().value!)
    this.failures.set(address, { count: 1, until: now + WINDOW_MS })
  }

  /** A right key from `address`: its failures are forgotten. */
  succeeded(address: string): void {
    this.failures.delete(address)
  }
}
