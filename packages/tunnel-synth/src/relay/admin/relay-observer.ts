/**
 * What the relay's admin surface counts: answers by status and code, bytes, agent attaches, and
 * per tunnel the requests and errors of the last minutes. Fed by one-line calls where requests
 * finish; read by `/metrics` and the status page. Plain numbers: no metrics library on the hot path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { RelayLease } from '../lease-store'
import { RollingCounts } from './rolling-counts'

/** The parts of a forwarded request the observer reads when it is over. */
interface Forwarded {
  bytesIn: number
  bytesOut: number
  status: number | undefined
}

/** The problem code each relay answer carried (set by `sendProblem`). */
const problemCodes = new WeakMap<ServerResponse, string>()

/**
 * Note the `TUNNEL_*` code an answer carries, for the metrics' `code` label.
 * @example
 * ```ts
 * noteProblemCode(res, 'TUNNEL_AGENT_OFFLINE')
 * ```
 */
export function noteProblemCode(res: ServerResponse, code: string): void {
  problemCodes.set(res, code)
}

/** One tunnel's counters, with the lease they belong to. */
export interface TunnelCounts {
  lease: RelayLease
  counts: RollingCounts
}

/** An answer counts as an error when the relay answered with a problem code, or it is a 5xx. */
function isError(status: number, code: string | undefined): boolean {
  return code !== undefined || status >= 500
}

/** The counters of one relay (see the module comment). */
export class RelayObserver {
  /** Answers by `"<status> <code>"` (`code` is `none` for the task app's own answers). */
  readonly answers = new Map<string, number>()
  bytesIn = 0
  bytesOut = 0
  attaches = 0
  reconnects = 0
  requests = 0
  errors = 0
  readonly startedAt = Date.now()
  readonly total = new RollingCounts()
  /** By lease id; forgotten once the lease has expired and been quiet for the window. */
  readonly tunnels = new Map<string, TunnelCounts>()
  /** Leases that had an agent attached, by lease id (their expiry), to tell reconnects apart. */
  private readonly attachedBefore = new Map<string, number>()
  private readonly leases = new WeakMap<ServerResponse, RelayLease>()
  private readonly forwarded = new WeakMap<ServerResponse, Forwarded>()

  /** A public request (`/s/...`) began: count its answer when it is over. */
  request(_req: IncomingMessage, res: ServerResponse): void {
    res.once('close', () => this.answered(res))
  }

  /** The request names a live tunnel: its answer also counts for that tunnel. */
  tunnel(res: ServerResponse, lease: RelayLease): void {
    this.leases.set(res, lease)
  }

  /** The request is forwarded through an agent: its bytes and final status are read at the end. */
  forwarding(res: ServerResponse, pr: Forwarded): void {
    this.forwarded.set(res, pr)
  }

  /** An agent attached to `lease` (a reconnect when one did before). */
  attached(lease: RelayLease): void {
    this.attaches += 1
    if (this.attachedBefore.has(lease.leaseId)) this.reconnects += 1
    this.attachedBefore.set(lease.leaseId, lease.expiresAt)
  }

  private answered(res: ServerResponse): void {
    const pr = this.forwarded.get(res)
    const status = pr?.status ?? res.statusCode
    const code = problemCodes.get(res)
    const key = `${status} ${code ?? 'none'}`
    this.answers.set(key, (this.answers.get(key) ?? 0) + 1)
    const error = isError(status, code)
    const now = Date.now()
    this.requests += 1
    if (error) this.errors += 1
    this.total.add(now, error)
    if (pr) {
      this.bytesIn += pr.bytesIn
      this.bytesOut += pr.bytesOut
    }
    const lease = this.leases.get(res)
    if (!lease) return
    let t = this.tunnels.get(lease.leaseId)
    if (!t) this.tunnels.set(lease.leaseId, (t = { lease, counts: new RollingCounts() }))
    t.counts.add(now, error)
  }

  /** Forget tunnels whose lease expired and that were quiet for the whole window. */
  prune(now: number): void {
    for (const [id, t] of this.tunnels) {
      if (t.lease.expiresAt <= now && t.counts.lastAt <= now - 5 * 60_000) this.tunnels.delete(id)
    }
    for (const [id, expiresAt] of this.attachedBefore) if (expiresAt <= now) this.attachedBefore.delete(id)
  }
}
