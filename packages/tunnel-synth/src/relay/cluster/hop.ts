/** The internal HTTP hop: a node without the agent streams the request to the node that holds it. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Pool } from 'undici'
import type { Dispatcher } from 'undici'
import { connectionTokens } from '../../protocol/frames'
import { redact, safeLog } from '../../types'
import type { RelayLease } from '../lease-store'
import { sendProblem } from '../problem'
import type { RelayContext } from '../relay-context'
import type { RelayCluster } from './cluster'
import { HOP_AUTH_HEADER, HOP_PREFIX } from './hop-auth'
import type { HopCredentials } from './hop-auth'
import type { Presence } from './presence'
import { LOOKUP_CACHE_MS, TtlCache } from './ttl-cache'

type Found = { presence: Presence; raw: string }

/** Hop-by-hop headers (RFC 9110 §7.6.1) and our credential: never copied across a hop. */
const HOP_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  HOP_AUTH_HEADER,
])
/** Errors that mean the owning node cannot be reached at all (nothing was sent). */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'UND_ERR_CONNECT_TIMEOUT',
])

/**
 * Check a hop's credential (signed for this node, within a minute); a request without a valid one is answered
 * 404, as if the path did not exist. The credential header is removed before the request goes on.
 * @example
 * ```ts
 * if (!acceptHop(credentials, req, res)) return
 * ```
 */
export function acceptHop(creds: HopCredentials, req: IncomingMessage, res: ServerResponse): boolean {
  if (!creds.verify(req.headers[HOP_AUTH_HEADER])) {
    sendProblem(res, 404, 'TUNNEL_NOT_FOUND', `Nothing at ${req.method} ${(req.url ?? '/').split('?')[0]}.`)
    return false
  }
  const raw = req.rawHeaders
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === HOP_AUTH_HEADER) raw.splice(i, 2)
  return true
}

function requestHeaders(req: IncomingMessage): string[] {
  const raw = req.rawHeaders
  const named = connectionTokens(req.headers.connection)
  const out: string[] = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase()
    if (!HOP_HEADERS.has(lower) && !named?.has(lower)) out.push(raw[i]!, raw[i + 1]!)
  }
  return out
}

/** Largest answer (by its content-length) gathered whole and written with one `end(body)`. */
const WHOLE_BODY_MAX = 64 * 1024

/** The owner's response head without hop-by-hop headers, as a flat `[name, value, ...]` list. */
function responseHeaders(raw: Buffer[]): { headers: string[]; length: number } {
  const headers: string[] = []
  let length = -1
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1')
    const lower = name.toLowerCase()
    if (HOP_HEADERS.has(lower)) continue
    const value = raw[i + 1]!.toString('latin1')
    if (lower === 'content-length') length = Number(value)
    headers.push(name, value)
  }
  return { headers, length }
}

/**
 * The owner's answer, written to the caller (undici's `dispatch` handler: no body stream, no
 * promise). An answer of known small length is gathered and written with one `writeHead` +
 * `end(body)`; a larger or open-ended one streams, pausing the hop while the caller is behind. A
 * broken body resets the caller's response: a half answer must not pass for a whole one.
 */
class HopAnswer implements Dispatcher.DispatchHandler {
  private abortHop: ((err?: Error) => void) | undefined
  private chunks: Buffer[] | undefined
  private status = 0
  private headers: string[] = []
  private headSent = false
  aborted = false

  constructor(
    private readonly res: ServerResponse,
    private readonly failed: (err: unknown) => void,
  ) {
    res.once('close', this.onClose)
  }

  /** The caller left before the whole answer: abort the hop (the owner cancels on the agent). */
  private readonly onClose = (): void => {
    if (this.res.writableFinished || this.aborted) return
    this.aborted = true
    this.abortHop?.()
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortHop = abort
    if (this.aborted) abort()
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (status < 200) return true // 1xx: the final head follows
    const { headers, length } = responseHeaders(raw)
    if (length >= 0 && length <= WHOLE_BODY_MAX) {
      this.status = status
      this.headers = headers
      this.chunks = []
      return true
    }
    this.headSent = true
    this.res.writeHead(status, headers)
    // the head leaves with the first body bytes of this turn, or alone on the next one
    setImmediate(() => {
      if (!this.res.headersSent && !this.res.destroyed) this.res.flushHeaders()
    })
    this.res.on('drain', resume)
    return true
  }

  onData(chunk: Buffer): boolean {
    if (this.chunks) {
      this.chunks.push(chunk)
      return true
    }
    return this.res.write(chunk) // false: undici pauses until the caller drains (`resume`)
  }

  onComplete(): void {
    const { res } = this
    res.off('close', this.onClose)
    if (this.chunks) {
      res.writeHead(this.status, this.headers)
      const c = this.chunks
      res.end(c.length === 1 ? c[0] : c.length === 0 ? undefined : Buffer.concat(c))
    } else res.end()
  }

  onError(err: Error): void {
    const { res } = this
    res.off('close', this.onClose)
    if (this.aborted) return // the caller left: the owner saw the hop end and cancelled
    if (this.headSent) res.destroy()
    else this.failed(err)
  }
}

/** Hops out of one node: a keep-alive pool per peer node. */
export class HopClient {
  private readonly pools = new Map<string, Pool>()
  /** Presence records read recently, by lease id: most hops skip the Redis lookup. */
  private readonly owners = new TtlCache<Found>(LOOKUP_CACHE_MS)

  constructor(
    private readonly ctx: RelayContext,
    private readonly cluster: RelayCluster,
  ) {}

  private pool(url: string): Pool {
    let pool = this.pools.get(url)
    if (!pool) {
      pool = new Pool(url, { connections: 64, connect: { timeout: 2_000 }, keepAliveTimeout: 4_000 })
      this.pools.set(url, pool)
    }
    return pool
  }

  /** Forward a public request (`/s/<route>...` as `path`) to the node holding the lease's agent. */
  async forward(req: IncomingMessage, res: ServerResponse, lease: RelayLease, path: string): Promise<void> {
    const { counters, nodeId } = this.cluster
    const cached = this.owners.get(lease.leaseId, performance.now())
    let found = cached
    try {
      found ??= await this.cluster.presence.lookup(lease.leaseId)
    } catch {
      counters.forwardFailures += 1
      const detail = 'The relay cannot reach Redis to find the node holding this tunnel; retry shortly.'
      return sendProblem(res, 503, 'TUNNEL_CLUSTER_UNAVAILABLE', detail, { 'retry-after': '1' })
    }
    if (!found || found.presence.n === nodeId) {
      const detail = 'No agent is attached to this tunnel; retry later.'
      return sendProblem(res, 503, 'TUNNEL_AGENT_OFFLINE', detail, { 'retry-after': '1' })
    }
    if (!cached) this.owners.set(lease.leaseId, found, performance.now()) // kept from its lookup on
    counters.forwardsOut += 1
    const hopPath = `${HOP_PREFIX}${path}`
    const method = req.method ?? 'GET'
    const headers = requestHeaders(req)
    headers.push(HOP_AUTH_HEADER, this.cluster.credentials.sign(found.presence.n))
    const hasBody =
      req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > 0
    const answer = new HopAnswer(res, (err) => this.failed(res, lease, found, err))
    this.pool(found.presence.u).dispatch(
      {
        method: method,
        path: hopPath,
        headers,
        body: hasBody ? req : null,
        headersTimeout: this.ctx.settings.defaultDeadlineMs + 5_000,
        bodyTimeout: 0,
      },
      answer,
    )
  }

  private failed(res: ServerResponse, lease: RelayLease, found: Found, err: unknown): void {
    this.cluster.counters.forwardFailures += 1
    this.owners.delete(lease.leaseId)
    const code = (err as { code?: string }).code ?? ''
    const unreachable =
      UNREACHABLE.has(code) || UNREACHABLE.has((err as { cause?: { code?: string } }).cause?.code ?? '')
    safeLog(
      this.ctx.logger,
      'warn',
      { route: redact(lease.routeToken), node: found.presence.n, code, err: (err as Error).message },
      unreachable ? 'relay: node holding the agent is unreachable' : 'relay: hop to the agent node failed',
    )
    if (unreachable) {
      // stale presence: drop it (only if unchanged) so the next caller does not try the dead node
      void this.cluster.presence.release(lease.leaseId, found.raw).catch(() => {})
      const detail =
        "The relay node holding this tunnel's agent is unreachable; the agent reconnects to another node: retry shortly."
      return sendProblem(res, 503, 'TUNNEL_AGENT_OFFLINE', detail, { 'retry-after': '1' })
    }
    sendProblem(
      res,
      502,
      'TUNNEL_AGENT_DISCONNECTED',
      'The relay node holding the agent dropped the request.',
      {
        connection: 'close',
      },
    )
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.destroy().catch(() => {})))
    this.pools.clear()
  }
}
