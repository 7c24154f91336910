/** Checking that a public tunnel URL really reaches the app. */
import { fetch } from 'undici'
import { CloudflareTunnelError } from './errors'

/**
 * Options of {@link verifyTunnel}.
 *
 * @example
 * ```ts
 * const options: VerifyTunnelOptions = { path: '/health', headers: { 'x-api-key': key }, timeoutMs: 60_000 }
 * ```
 */
export interface VerifyTunnelOptions {
  /** Path to request. @default '/health' */
  readonly path?: string
  /** Headers to send (e.g. the app's API key). @default {} */
  readonly headers?: Readonly<Record<string, string>>
  /** Overall deadline, in ms. Fresh quick tunnels can take several seconds to resolve. @default 60000 */
  readonly timeoutMs?: number
  /** First wait between attempts, doubled after each failure up to `maxIntervalMs`. @default 250 */
  readonly intervalMs?: number
  /** Longest wait between attempts. @default 3000 */
  readonly maxIntervalMs?: number
  /** Which statuses mean "the request reached the app". @default status < 500 (Cloudflare answers 502/530 while the tunnel is not routed) */
  readonly accept?: (status: number) => boolean
  /** Cancels verification; rejects with `signal.reason`. */
  readonly signal?: AbortSignal
}

/**
 * Result of a successful {@link verifyTunnel}.
 *
 * @example
 * ```ts
 * const { status, attempts } = await verifyTunnel(tunnel.url)
 * ```
 */
export interface VerifyTunnelResult {
  /** Status of the accepted response. */
  readonly status: number
  /** Number of requests made. */
  readonly attempts: number
  /** Time taken, in ms. */
  readonly elapsedMs: number
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}

/**
 * Requests `url + path` until a response shows it reaches the app, retrying on network errors
 * (DNS of a fresh quick tunnel not propagated yet) and on Cloudflare's 502/530 answers, with
 * exponential backoff, until `timeoutMs`. Redirects are not followed (a 3xx counts as reached).
 *
 * @example
 * ```ts
 * await using tunnel = await cloudflareQuickTunnel().open(target)
 * await verifyTunnel(tunnel.url, { headers: { 'x-api-key': key }, timeoutMs: 60_000 })
 * ```
 */
export async function verifyTunnel(
  url: string,
  options: VerifyTunnelOptions = {},
): Promise<VerifyTunnelResult> {
  const userSignal = options.signal
  userSignal?.throwIfAborted()
  let target: URL
  try {
    target = new URL(url.replace(/\/+$/, '') + (options.path ?? '/health').replace(/^\/?/, '/'))
  } catch (err) {
    throw new CloudflareTunnelError(
      'TASKAPP_ERR_INVALID_OPTIONS',
      `verifyTunnel: ${JSON.stringify(url)} is not a valid URL.`,
      {
        cause: err,
      },
    )
  }
  const timeoutMs = options.timeoutMs ?? 60_000
  const accept = options.accept ?? ((status: number) => status < 500)
  const deadline = AbortSignal.timeout(timeoutMs)
  const signal = userSignal === undefined ? deadline : AbortSignal.any([userSignal, deadline])
  const started = Date.now()
  let interval = options.intervalMs ?? 250
  const maxInterval = options.maxIntervalMs ?? 3000
  let attempts = 0
  let last: string = 'no attempt finished'
  let lastError: unknown
  for (;;) {
    attempts += 1
    try {
      const res = await fetch(target, {
        headers: { ...options.headers },
        redirect: 'manual',
        signal,
      })
      await res.body?.cancel().catch(() => {})
      if (accept(res.status)) return { status: res.status, attempts, elapsedMs: Date.now() - started }
      last = `HTTP ${res.status}`
      lastError = undefined
    } catch (err) {
      if (signal.aborted) break
      lastError = err
      const cause = (err as { cause?: { code?: string; message?: string } }).cause
      last = cause?.code ?? cause?.message ?? (err as Error).message
    }
    await wait(interval, signal)
    if (signal.aborted) break
    interval = Math.min(interval * 2, maxInterval)
  }
  if (userSignal?.aborted === true) throw userSignal.reason
  throw new CloudflareTunnelError(
    'TASKAPP_ERR_TUNNEL_VERIFY_FAILED',
    `${target.href} did not reach the app within ${timeoutMs} ms (${attempts} attempts, last: ${last}). A fresh quick ` +
      'tunnel can need a few more seconds for DNS: raise timeoutMs; otherwise check that the app answers locally.',
    { cause: lastError },
  )
}
