import { HealthCheckError } from './errors'
import {
  createProbeDispatcher,
  defaultIsHealthy,
  parseHealthUrl,
  probe,
  probeHeaders,
  type ProbeOptions,
  type ProbeResult,
} from './probe'

/** Passed to `onUnhealthy` / `onRecovered`. */
export interface HealthEvent {
  /** Failed probes in a row. */
  readonly consecutiveFailures: number
  /** The probe that crossed the threshold (or recovered). */
  readonly probe: ProbeResult
}

/** Options of {@link watchHealth}. */
export interface WatchHealthOptions extends ProbeOptions {
  /**
   * Pause between probes.
   * @default 5000
   */
  intervalMs?: number
  /**
   * Failed probes in a row that make the target unhealthy.
   * @default 3
   */
  failureThreshold?: number
  /** Called once each time the target turns unhealthy. Errors it throws are ignored. */
  onUnhealthy?: (event: HealthEvent) => void
  /** Called once when an unhealthy target answers healthy again. */
  onRecovered?: (event: HealthEvent) => void
}

/** A running liveness watcher. */
export interface HealthWatcher extends AsyncDisposable {
  /** False from the moment `failureThreshold` probes in a row failed until one succeeds. */
  readonly healthy: boolean
  /** Failed probes in a row so far. */
  readonly consecutiveFailures: number
  /** Probes made so far. */
  readonly probes: number
  /** Stops probing and waits for a probe in flight. Idempotent. */
  close(): Promise<void>
}

/** Throws `TASKAPP_ERR_INVALID_OPTIONS` unless every timing option is a finite number >= 1. */
function assertWatchOptions(intervalMs: number, failureThreshold: number, requestTimeoutMs: number): void {
  for (const [name, value, min] of [
    ['intervalMs', intervalMs, 1],
    ['failureThreshold', failureThreshold, 1],
    ['requestTimeoutMs', requestTimeoutMs, 1],
  ] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
      throw new HealthCheckError(
        'TASKAPP_ERR_INVALID_OPTIONS',
        `Invalid ${name} ${JSON.stringify(value)}: expected a number >= ${min}.`,
      )
    }
  }
}

/** Calls a user callback, swallowing anything it throws. */
function callSafely(fn: ((e: HealthEvent) => void) | undefined, event: HealthEvent): void {
  try {
    fn?.(event)
  } catch {
    // a throwing callback must not stop the watcher
  }
}

/** Mutable health state of one watcher. */
interface WatchState {
  healthy: boolean
  failures: number
  probes: number
}

/** Counts one probe result into `state`, firing `onRecovered` / `onUnhealthy` on transitions. */
function recordProbe(
  state: WatchState,
  result: ProbeResult,
  failureThreshold: number,
  options: Pick<WatchHealthOptions, 'onRecovered' | 'onUnhealthy'>,
): void {
  state.probes++
  if (result.healthy) {
    if (!state.healthy)
      callSafely(options.onRecovered, { consecutiveFailures: state.failures, probe: result })
    state.healthy = true
    state.failures = 0
  } else {
    state.failures++
    if (state.healthy && state.failures >= failureThreshold) {
      state.healthy = false
      callSafely(options.onUnhealthy, { consecutiveFailures: state.failures, probe: result })
    }
  }
}

/**
 * Watches `url` in the background: one probe every `intervalMs` (timers unref'd, so the watcher
 * never keeps the process alive), `onUnhealthy` after `failureThreshold` failures in a row.
 *
 * @example
 * await using watcher = watchHealth('http://127.0.0.1:8114/health', {
 *   intervalMs: 2000,
 *   onUnhealthy: ({ consecutiveFailures }) => console.warn(`down (${consecutiveFailures} failures)`),
 * })
 */
export function watchHealth(url: string | URL, options: WatchHealthOptions = {}): HealthWatcher {
  const target = parseHealthUrl(url)
  const { intervalMs = 5000, failureThreshold = 3, requestTimeoutMs = 2000 } = options
  assertWatchOptions(intervalMs, failureThreshold, requestTimeoutMs)
  const headers = probeHeaders(options.apiKey, options.headers)
  const isHealthy = options.isHealthy ?? defaultIsHealthy
  const dispatcher = options.dispatcher ?? createProbeDispatcher()
  const controller = new AbortController()
  const stop = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal
  const state: WatchState = { healthy: true, failures: 0, probes: 0 }
  let timer: ReturnType<typeof setTimeout> | undefined
  let inFlight: Promise<void> | undefined
  let closing: Promise<void> | undefined

  const tick = async () => {
    timer = undefined
    let result: ProbeResult
    try {
      result = await probe(target, headers, isHealthy, requestTimeoutMs, dispatcher, stop)
    } catch {
      return // aborted: closing
    }
    recordProbe(state, result, failureThreshold, options)
    schedule()
  }

  const schedule = () => {
    if (stop.aborted) return
    timer = setTimeout(() => {
      inFlight = tick()
    }, intervalMs)
    timer.unref?.()
  }

  const onOuterAbort = () => void close()
  const close = () => {
    closing ??= (async () => {
      options.signal?.removeEventListener('abort', onOuterAbort)
      controller.abort()
      if (timer !== undefined) clearTimeout(timer)
      await inFlight
      if (options.dispatcher === undefined) await dispatcher.destroy()
    })()
    return closing
  }
  options.signal?.addEventListener('abort', onOuterAbort, { once: true })
  schedule()

  return {
    get healthy() {
      return state.healthy
    },
    get consecutiveFailures() {
      return state.failures
    },
    get probes() {
      return state.probes
    },
    close,
    [Symbol.asyncDispose]: close,
  }
}
