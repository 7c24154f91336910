/** What the parts of one relay share: settings, attached agents, counters, the memory in use. */
import type { ServerResponse } from 'node:http'
import type { Logger } from '../types'
import type { RelayObserver } from './admin/relay-observer'
import type { AgentSession } from './agent-session'
import type { RelayCluster } from './cluster/cluster'
import { InflightShares } from './inflight-shares'
import type { LeaseStore } from './lease-store'
import type { PublicRequest } from './public-request'
import type { RelaySettings } from './relay-options'

/** The shared state of one relay (one per `createRelayServer`). */
export class RelayContext {
  /** The attached agent of each lease, by lease id. */
  readonly sessions = new Map<string, AgentSession>()
  /** Public requests in flight: in total, per lease, per owner key; and the refusals. */
  readonly shares: InflightShares
  peakMemory = 0
  /** This node's cluster membership (`cluster` option), else `undefined`. */
  cluster: RelayCluster | undefined = undefined
  /** Set once `close()` began. */
  closing = false
  /** The admin surface's counters; unset when nothing reads them (no admin key, no admin port). */
  observer: RelayObserver | undefined
  /** Tunneled requests by response, only while DEBUG is on: their one log line adds rid and bytes. */
  readonly tunneled = new WeakMap<ServerResponse, PublicRequest>()
  private corked: PublicRequest[] = []
  private ridSeq = 0

  constructor(
    readonly settings: RelaySettings,
    readonly store: LeaseStore,
    readonly logger: Logger,
    readonly debug: boolean,
  ) {
    this.shares = new InflightShares(settings)
  }

  /** Public requests in flight across all agents. */
  get inflight(): number {
    return this.shares.total
  }

  /** A request id unique on this relay. */
  nextRid(): string {
    return `r${(this.ridSeq += 1)}`
  }

  /** Bytes held right now for bodies in transit: WebSocket send queues and callers' write buffers. */
  memoryInUse(): number {
    let total = 0
    for (const s of this.sessions.values()) {
      total += s.ws.bufferedAmount
      for (const pr of s.writing) total += pr.res.writableLength
    }
    if (total > this.peakMemory) this.peakMemory = total
    return total
  }

  /** Flush a response corked at its headers together with the others of this turn, on the next. */
  uncorkNextTurn(pr: PublicRequest): void {
    if (this.corked.push(pr) === 1) setImmediate(this.flushCorked)
  }

  private readonly flushCorked = (): void => {
    const list = this.corked
    this.corked = []
    for (const pr of list) pr.uncork()
  }
}
