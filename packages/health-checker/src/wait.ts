import { HealthCheckError, type LastProbe } from './errors'
import {
  createProbeDispatcher,
  defaultIsHealthy,
  parseHealthUrl,
  probe,
  probeHeaders,
  type ProbeOptions,
  type ProbeResult,
} from './probe'

/** Options of {@link waitForHealthy}. */
export interface WaitForHealthyOptions extends ProbeOptions {
  /**
   * Overall deadline.
   * @default 30000
   */
  timeoutMs?: number
  /**
   * First pause between probes; it doubles after each failed probe.
   * @default 1
   */
  initialDelayMs?: number
  /**
   * Longest pause between probes.
   * @default 250
   */
  maxDelayMs?: number
}

/** How a successful wait went. */
export interface WaitForHealthyResult {
  /** Probes made, the healthy one included. */
  readonly attempts: number
  /** Time from the call to the healthy answer. */
  readonly elapsedMs: number
  /** HTTP status of the healthy answer. */
  readonly status: number
}

function assertMs(name: string, value: number, min: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new HealthCheckError(
      'TASKAPP_ERR_INVALID_OPTIONS',
      `Invalid ${name} ${JSON.stringify(value)}: expected a number of milliseconds >= ${min}.`,
    )
  }
}

/** Pause that rejects as soon as `signal` aborts; reads `setTimeout` at call time. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function lastOf(result: ProbeResult | undefined): LastProbe {
  return { status: result?.status, body: result?.body, error: result?.error }
}

function describeLast(last: LastProbe): string {
  if (last.status !== undefined)
    return `HTTP ${last.status}${last.body ? ` ${JSON.stringify(last.body)}` : ''}`
  return last.error ?? 'no probe completed'
}

/**
 * Resolves once `url` answers healthy; polls at once, then backs off from `initialDelayMs`
 * doubling to `maxDelayMs`, so a server ready in 3 ms is seen in about 3 ms.
 *
 * Connection errors, resets, slow answers and non-healthy statuses (5xx included) are retried
 * until `timeoutMs`; then it throws `TASKAPP_ERR_HEALTH_TIMEOUT` with what the last probe saw.
 * A refused key (401/403, or a 400 carrying synth-ai's `unauthorised` code) throws
 * `TASKAPP_ERR_HEALTH_UNAUTHORIZED` at once. Aborting `signal` rejects with `signal.reason`.
 *
 * @example
 * import { waitForHealthy } from '@taskapp/health-checker'
 * const { attempts, elapsedMs } = await waitForHealthy('http://127.0.0.1:8114/health', {
 *   apiKey: process.env.ENVIRONMENT_API_KEY,
 *   timeoutMs: 10_000,
 * })
 */
export async function waitForHealthy(
  url: string | URL,
  options: WaitForHealthyOptions = {},
): Promise<WaitForHealthyResult> {
  const {
    timeoutMs = 30_000,
    initialDelayMs = 1,
    maxDelayMs = 250,
    requestTimeoutMs = 2000,
    isHealthy = defaultIsHealthy,
    signal,
  } = options
  const target = parseHealthUrl(url)
  assertMs('timeoutMs', timeoutMs, 0)
  assertMs('initialDelayMs', initialDelayMs, 0)
  assertMs('maxDelayMs', maxDelayMs, 0)
  assertMs('requestTimeoutMs', requestTimeoutMs, 1)
  signal?.throwIfAborted()

  const headers = probeHeaders(options.apiKey, options.headers)
  const started = performance.now()
  const deadline = AbortSignal.timeout(Math.max(timeoutMs, 1))
  const stop = signal ? AbortSignal.any([signal, deadline]) : deadline
  const dispatcher = options.dispatcher ?? createProbeDispatcher()
  let attempts = 0
  let last: ProbeResult | undefined
  let wait = initialDelayMs
  try {
    for (;;) {
      attempts++
      last = await probe(target, headers, isHealthy, requestTimeoutMs, dispatcher, stop)
      if (last.healthy) {
        return { attempts, elapsedMs: performance.now() - started, status: last.status! }
      }
      if (last.unauthorized) {
        throw new HealthCheckError(
          'TASKAPP_ERR_HEALTH_UNAUTHORIZED',
          `${target.href} refused the API key (HTTP ${last.status}). A wrong key will not fix itself: ` +
            `pass the key the task app expects (apiKey, sent as X-API-Key and Authorization: Bearer; ` +
            `ENVIRONMENT_API_KEY for synth-ai task apps).`,
          { url: target.href, attempts, last: lastOf(last) },
        )
      }
      await pause(Math.min(wait, maxDelayMs), stop)
      wait = Math.max(wait * 2, 1)
    }
  } catch (err) {
    if (err instanceof HealthCheckError) throw err
    if (signal?.aborted) throw signal.reason
    if (deadline.aborted) {
      const seen = lastOf(last)
      throw new HealthCheckError(
        'TASKAPP_ERR_HEALTH_TIMEOUT',
        `${target.href} did not answer healthy within ${timeoutMs} ms (${attempts} probes; last: ${describeLast(seen)}). ` +
          `Usual causes: the app has no /health route, it does not accept the API key header ` +
          `(X-API-Key / Authorization: Bearer), or the server crashed during start-up. If it is only slow, ` +
          `raise timeoutMs (healthCheckTimeoutMs in InProcessTaskApp).`,
        { url: target.href, attempts, last: seen, timeoutMs, cause: err },
      )
    }
    throw err
  } finally {
    if (options.dispatcher === undefined) await dispatcher.destroy()
  }
}

/** Options of {@link checkHealth}. */
export type CheckHealthOptions = ProbeOptions

/**
 * Probes `url` once. Never throws for a failed probe (the result says what happened); rejects
 * only on an invalid URL or an aborted `signal`.
 *
 * @example
 * const r = await checkHealth('http://127.0.0.1:8114/health', { apiKey })
 * if (!r.healthy) console.log(r.status ?? r.error)
 */
export async function checkHealth(url: string | URL, options: CheckHealthOptions = {}): Promise<ProbeResult> {
  const target = parseHealthUrl(url)
  const requestTimeoutMs = options.requestTimeoutMs ?? 2000
  assertMs('requestTimeoutMs', requestTimeoutMs, 1)
  options.signal?.throwIfAborted()
  const dispatcher = options.dispatcher ?? createProbeDispatcher()
  try {
    return await probe(
      target,
      probeHeaders(options.apiKey, options.headers),
      options.isHealthy ?? defaultIsHealthy,
      requestTimeoutMs,
      dispatcher,
      options.signal,
    )
  } finally {
    if (options.dispatcher === undefined) await dispatcher.destroy()
  }
}
