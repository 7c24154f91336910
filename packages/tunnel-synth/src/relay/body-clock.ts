/** Request-body timing: a caller's upload that stalls, or trickles below a minimum rate, is cut. */

/** The two rules (0 turns one off). */
export interface BodyTiming {
  /** Longest pause between two bytes of a body. */
  bodyIdleTimeoutMs: number
  /** Fewest bytes per second, averaged over each window. */
  bodyMinBytesPerSecond: number
  bodyRateWindowMs: number
}

/**
 * Watches one request body while it arrives. Each window (the first is the grace period) must
 * bring `bodyMinBytesPerSecond × bodyRateWindowMs / 1000` bytes, and no gap between bytes may last
 * `bodyIdleTimeoutMs`; otherwise `onSlow` is called once with a sentence saying which rule.
 * While the relay itself holds the upload back ({@link stop}), nothing is measured; {@link start}
 * begins a fresh window.
 *
 * @example
 * ```ts
 * const clock = new BodyClock(settings, (detail) => fail(408, detail))
 * clock.start()
 * req.on('data', (c) => clock.bytesIn(c.length))
 * req.on('end', () => clock.stop())
 * ```
 */
export class BodyClock {
  private idleTimer: NodeJS.Timeout | undefined
  private windowTimer: NodeJS.Timeout | undefined
  private windowBytes = 0

  constructor(
    private readonly timing: BodyTiming,
    private readonly onSlow: (detail: string) => void,
  ) {}

  /** Measure from now (again): a fresh idle period and a fresh window. */
  start(): void {
    this.stop()
    const { bodyIdleTimeoutMs, bodyMinBytesPerSecond, bodyRateWindowMs } = this.timing
    if (bodyIdleTimeoutMs > 0) {
      this.idleTimer = setTimeout(this.onIdle, bodyIdleTimeoutMs)
      this.idleTimer.unref()
    }
    if (bodyMinBytesPerSecond > 0) {
      this.windowBytes = 0
      this.windowTimer = setTimeout(this.onWindow, bodyRateWindowMs)
      this.windowTimer.unref()
    }
  }

  /** `n` body bytes arrived. */
  bytesIn(n: number): void {
    this.windowBytes += n
    this.idleTimer?.refresh()
  }

  /** Measure no more (the body ended, the request is over, or the relay paused the upload). */
  stop(): void {
    clearTimeout(this.idleTimer)
    clearTimeout(this.windowTimer)
    this.idleTimer = this.windowTimer = undefined
  }

  private readonly onIdle = (): void => {
    this.stop()
    this.onSlow(`No byte of the request body arrived for ${this.timing.bodyIdleTimeoutMs} ms.`)
  }

  private readonly onWindow = (): void => {
    const { bodyMinBytesPerSecond, bodyRateWindowMs } = this.timing
    const rate = (this.windowBytes * 1000) / bodyRateWindowMs
    if (rate < bodyMinBytesPerSecond) {
      this.stop()
      this.onSlow(
        `The request body came at ${Math.floor(rate)} bytes/s over ${bodyRateWindowMs} ms; ` +
          `the relay needs at least ${bodyMinBytesPerSecond} bytes/s.`,
      )
      return
    }
    this.windowBytes = 0
    this.windowTimer?.refresh()
  }
}
