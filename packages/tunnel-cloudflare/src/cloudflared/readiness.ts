/**
 * When a tunnel is ready: cloudflared printed the URL (quick tunnels), registered a connection
 * with the edge, and logged its metrics address. Each fact comes from a log line; the
 * registration (and a missed URL) also from the metrics server, whose `/ready` answers 200 once a
 * connection is up and whose `/quicktunnel` names the host (reference/cloudflared.md, section 5).
 */
import { request } from 'node:http'
import { parseCloudflaredLine, parseMetricsAddress } from '../log-parser'
import type { SupervisedExit } from '../supervised-process'

const READY_POLL_MS = 250
const PROBE_TIMEOUT_MS = 1000

/** What cloudflared's output and metrics server have told so far. */
export interface TunnelProgress {
  /** Public URL: printed (quick), from `/quicktunnel`, or known in advance (named). */
  url: string | undefined
  /** A connection to Cloudflare's edge is registered. */
  registered: boolean
  /** `http://<address>` of the metrics server, from its `Starting metrics server on` line. */
  metricsUrl: string | undefined
  /** The quick-tunnel API answered 429. */
  rateLimited: boolean
  /** The named-tunnel token was refused. */
  tokenInvalid: boolean
}

/** Folds one raw line of cloudflared output into `progress`. */
export function observeLine(progress: TunnelProgress, raw: string): void {
  const parsed = parseCloudflaredLine(raw)
  if (parsed.url !== undefined && progress.url === undefined) progress.url = parsed.url
  if (parsed.registered) progress.registered = true
  if (parsed.rateLimited) progress.rateLimited = true
  if (parsed.tokenInvalid) progress.tokenInvalid = true
  if (progress.metricsUrl === undefined) {
    const address = parseMetricsAddress(raw)
    if (address !== undefined) progress.metricsUrl = `http://${address}`
  }
}

/** One GET on the loopback metrics server; resolves status and body, or undefined on any error. */
function probe(url: string, timeoutMs: number): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { agent: false, headers: { connection: 'close' }, timeout: timeoutMs },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c.length + body.length > 64_000 ? '' : c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        res.on('error', () => resolve(undefined))
      },
    )
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(undefined))
    req.end()
  })
}

/** The URL from the metrics server's `/quicktunnel` answer (`{"hostname":"<words>.trycloudflare.com"}`). */
function quickTunnelUrl(answer: { status: number; body: string } | undefined): string | undefined {
  if (answer?.status !== 200) return undefined
  try {
    const host = (JSON.parse(answer.body) as { hostname?: unknown }).hostname
    if (typeof host === 'string' && /^[a-z0-9-]+\.trycloudflare\.com$/i.test(host) && !/^api\./i.test(host)) {
      return `https://${host.toLowerCase()}`
    }
  } catch {
    // not JSON: ignore
  }
  return undefined
}

/**
 * Polls `/ready` (and `/quicktunnel` while the URL is unknown) every 250 ms once the metrics
 * address is known, folding what it learns into `progress` and calling `changed()`. Timers are
 * unref'd; the returned function stops the polling.
 */
function pollMetricsServer(progress: TunnelProgress, changed: () => void): () => void {
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  const poll = async () => {
    try {
      const base = progress.metricsUrl
      const ready = base === undefined ? undefined : await probe(`${base}/ready`, PROBE_TIMEOUT_MS)
      if (!stopped && ready?.status === 200) {
        progress.url ??= quickTunnelUrl(await probe(`${base}/quicktunnel`, PROBE_TIMEOUT_MS))
        if (progress.url !== undefined) progress.registered = true
        if (!stopped) changed()
      }
    } finally {
      if (!stopped) timer = setTimeout(() => void poll(), READY_POLL_MS).unref()
    }
  }
  timer = setTimeout(() => void poll(), READY_POLL_MS).unref()
  return () => {
    stopped = true
    clearTimeout(timer)
  }
}

/** How {@link ReadinessWatch.wait} ends. */
export type ReadyOutcome = { readonly ok: true } | { readonly ok: false; readonly error: unknown }

/** Options of {@link ReadinessWatch.wait}. */
export interface WaitForReadyOptions {
  /** Settles when cloudflared has exited. */
  readonly exited: Promise<SupervisedExit>
  /** Deadline from now, in ms. */
  readonly timeoutMs: number
  /** The caller's signal: its abort ends the wait with `signal.reason`. */
  readonly signal: AbortSignal | undefined
  /** Builds the error for each way the wait can fail. */
  readonly errors: {
    exited(status: SupervisedExit): unknown
    rateLimited(): unknown
    timedOut(): unknown
  }
}

/**
 * Watches one cloudflared start-up: feed it every output line with `observe()`, and `wait()`
 * resolves on whichever comes first of ready, rate limit, exit, abort, or the deadline.
 */
export class ReadinessWatch {
  /** What is known so far; complete once `wait()` resolved `{ ok: true }`. */
  readonly progress: TunnelProgress
  #changed: () => void = () => {}

  /** `url`: the public URL when it is known in advance (named tunnels). */
  constructor(url?: string) {
    this.progress = { url, registered: false, metricsUrl: undefined, rateLimited: false, tokenInvalid: false }
  }

  /** Whether the URL, a registered connection and the metrics address are all known. */
  get ready(): boolean {
    const { url, registered, metricsUrl } = this.progress
    return url !== undefined && registered && metricsUrl !== undefined
  }

  /** Folds one raw output line in and re-checks readiness. */
  observe(raw: string): void {
    observeLine(this.progress, raw)
    this.#changed()
  }

  /** Waits for the first of ready, rate limit, exit, abort or deadline (see the class doc). */
  async wait({ exited, timeoutMs, signal: userSignal, errors }: WaitForReadyOptions): Promise<ReadyOutcome> {
    const deadline = AbortSignal.timeout(timeoutMs)
    const signal = userSignal === undefined ? deadline : AbortSignal.any([userSignal, deadline])
    let settled = false
    let resolve: (outcome: ReadyOutcome) => void = () => {}
    const outcome = new Promise<ReadyOutcome>((r) => (resolve = r))
    // Errors are built only by the first outcome, when the lines they carry are the right ones.
    const settle = (make: () => ReadyOutcome) => {
      if (settled) return
      settled = true
      resolve(make())
    }
    const onAbort = () =>
      settle(() => ({
        ok: false,
        error: userSignal?.aborted === true ? userSignal.reason : errors.timedOut(),
      }))
    this.#changed = () => {
      if (this.progress.rateLimited) settle(() => ({ ok: false, error: errors.rateLimited() }))
      else if (this.ready) settle(() => ({ ok: true }))
    }
    const stopPolling = pollMetricsServer(this.progress, () => this.#changed())
    signal.addEventListener('abort', onAbort, { once: true })
    void exited.then((status) => settle(() => ({ ok: false, error: errors.exited(status) })))
    if (signal.aborted) onAbort()
    this.#changed()
    try {
      return await outcome
    } finally {
      this.#changed = () => {}
      stopPolling()
      signal.removeEventListener('abort', onAbort)
    }
  }
}
