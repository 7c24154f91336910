/** One relay node's part in a cluster: its registration, the presence of its agents, hops in and out. */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Redis } from 'ioredis'
import { CloseCode } from '../../protocol/frames'
import type { AgentSession } from '../agent-session'
import { dropLease } from '../lease-api'
import type { RelayLease } from '../lease-store'
import type { RelayContext } from '../relay-context'
import type { ClusterSettings } from './cluster-options'

/** Cluster settings once the node listens (its advertised URL known). */
type NodeSettings = ClusterSettings & { advertiseUrl: string }
import { HopClient, acceptHop } from './hop'
import { HopCredentials } from './hop-auth'
import { PresenceRecords } from './presence'
import type { RelayRedis } from './redis-client'
import { LOOKUP_CACHE_MS, TtlCache } from './ttl-cache'

/** Counters of one node in a cluster (plain numbers, for metrics). */
export interface RelayClusterStats {
  nodeId: string
  /** Public requests this node forwarded to the node holding the agent. */
  forwardsOut: number
  /** Hops this node served for other nodes (as the agent's holder). */
  forwardsIn: number
  /** Forwarded requests that failed before an answer (owner unreachable, hop broken, Redis down). */
  forwardFailures: number
  /** Hops refused for a missing or wrong cluster credential. */
  hopsRefused: number
  /** Agents that attached here while another node's presence record named their lease (failover, reconnects). */
  takeovers: number
  /** Presence records this node holds (its attached agents). */
  presences: number
  /** Round trip of the last heartbeat pipeline to Redis, in ms; `undefined` before the first. */
  heartbeatRttMs: number | undefined
  /** Sum and count of heartbeat round trips (ms), for an average or a summary metric. */
  heartbeatRttSumMs: number
  heartbeatCount: number
  /** Heartbeats that failed (Redis down or slow). */
  heartbeatFailures: number
}

/** The cluster view a relay exposes: counters and readiness. */
export interface RelayClusterHandle {
  readonly nodeId: string
  stats(): RelayClusterStats
  /** Redis answers and this node's registration is live. */
  ready(): Promise<boolean>
}

/** A node of a relay cluster (one per `createRelayServer` with `cluster`). */
export class RelayCluster implements RelayClusterHandle {
  readonly nodeId: string
  readonly counters = { forwardsOut: 0, forwardsIn: 0, forwardFailures: 0, hopsRefused: 0, takeovers: 0 }
  readonly presence: PresenceRecords
  readonly hops: HopClient
  /** Hop credentials sent to peers and checked from them. */
  readonly credentials: HopCredentials
  /** Leases of the agents attached here, by route token: public requests for them skip Redis. */
  private readonly local = new Map<string, RelayLease>()
  /** This node's presence value per lease id. */
  private readonly held = new Map<string, string>()
  private readonly pending = new Set<Promise<unknown>>()
  private readonly nodeKey: string
  private timer: NodeJS.Timeout | undefined
  private beating = false
  private rtt = { last: undefined as number | undefined, sum: 0, count: 0, failures: 0 }
  private seq = 0
  private readonly leaseCache = new TtlCache<RelayLease>(LOOKUP_CACHE_MS)

  constructor(
    private readonly ctx: RelayContext,
    private readonly redis: RelayRedis,
    readonly settings: NodeSettings,
  ) {
    this.nodeId = settings.nodeId
    this.nodeKey = `${settings.prefix}node:${settings.nodeId}`
    this.presence = new PresenceRecords(redis.client, settings.prefix, settings.presenceTtlMs)
    this.credentials = new HopCredentials(settings.secret, settings.nodeId)
    this.hops = new HopClient(ctx, this)
  }

  get client(): Redis {
    return this.redis.client
  }

  /** Register the node and start the heartbeat. */
  async start(): Promise<void> {
    await this.heartbeat()
    this.timer = setInterval(() => void this.heartbeat(), this.settings.heartbeatMs)
    this.timer.unref()
  }

  /**
   * The lease of a route without a Redis round trip: an agent attached here, or a lease read from
   * Redis less than {@link LOOKUP_CACHE_MS} ago (a lease deleted meanwhile is still refused by
   * the node holding its agent, which drops it within a heartbeat).
   */
  localLease(routeToken: string): RelayLease | undefined {
    return this.local.get(routeToken) ?? this.leaseCache.get(routeToken, performance.now())
  }

  /** Remember a lease read from Redis for a moment (see {@link localLease}). */
  remember(lease: RelayLease): void {
    const now = performance.now()
    // only a fresh read: a lease served from the cache keeps the time it was read at
    if (this.leaseCache.get(lease.routeToken, now) !== lease)
      this.leaseCache.set(lease.routeToken, lease, now)
  }

  /** Hook: an agent attached here; take over the lease's presence. */
  attached(session: AgentSession): void {
    const { lease } = session
    const value = JSON.stringify({
      n: this.nodeId,
      u: this.settings.advertiseUrl,
      s: `${(this.seq += 1)}.${randomBytes(4).toString('hex')}`,
    })
    this.local.set(lease.routeToken, lease)
    this.held.set(lease.leaseId, value)
    this.track(
      this.presence.claim(lease.leaseId, value).then((previous) => {
        if (previous !== undefined && previous !== this.nodeId) this.counters.takeovers += 1
      }),
    )
  }

  /** Hook: the agent of `session` is gone; release its presence if it is still this attach's. */
  detached(session: AgentSession): void {
    const { lease } = session
    const value = this.held.get(lease.leaseId)
    if (this.ctx.sessions.has(lease.leaseId)) return // a newer session of this node holds it
    this.local.delete(lease.routeToken)
    this.held.delete(lease.leaseId)
    if (value !== undefined) this.track(this.presence.release(lease.leaseId, value))
  }

  /** A public request whose agent is not attached here: forward it to the node that holds it. */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    lease: RelayLease,
    routeToken: string,
    rest: string,
  ): Promise<void> {
    this.remember(lease)
    return this.hops.forward(req, res, lease, `/s/${routeToken}${rest}`)
  }

  /** Check a hop's credential; `false` (answered 404) when it is missing or wrong. */
  acceptHop(req: IncomingMessage, res: ServerResponse): boolean {
    const ok = acceptHop(this.credentials, req, res)
    if (ok) this.counters.forwardsIn += 1
    else this.counters.hopsRefused += 1
    return ok
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) =>
      this.ctx.logger.warn({ err: (err as Error).message }, 'relay: cluster presence update failed'),
    )
    this.pending.add(q)
    void q.finally(() => this.pending.delete(q))
  }

  /** Renew registration and presence; drop sessions whose lease is gone or taken by another node. */
  private async heartbeat(): Promise<void> {
    if (this.beating) return
    this.beating = true
    const held = [...this.held].map(([leaseId, value]) => ({ leaseId, value }))
    const started = performance.now()
    try {
      const results = await this.presence.beat(held, this.nodeKey, this.settings.advertiseUrl)
      const ms = performance.now() - started
      this.rtt = { ...this.rtt, last: ms, sum: this.rtt.sum + ms, count: this.rtt.count + 1 }
      results.forEach((result, i) => this.onBeat(held[i]!, result))
    } catch (err) {
      this.rtt.failures += 1
      this.ctx.logger.warn(
        { err: (err as Error).message },
        'relay: cluster heartbeat failed (Redis unreachable?)',
      )
    } finally {
      this.beating = false
    }
  }

  private onBeat(h: { leaseId: string; value: string }, result: string): void {
    if (result === 'renewed' || result === 'reclaimed' || this.held.get(h.leaseId) !== h.value) return
    const session = this.ctx.sessions.get(h.leaseId)
    this.held.delete(h.leaseId)
    if (!session) return
    this.local.delete(session.lease.routeToken)
    if (result === 'taken') {
      session.end(502, 'TUNNEL_AGENT_DISCONNECTED', 'The agent reconnected to another relay node.')
      session.ws.close(CloseCode.Replaced, 'agent attached to another relay node')
    } else {
      const expired = session.lease.expiresAt <= Date.now()
      dropLease(
        this.ctx,
        session.lease,
        expired ? CloseCode.LeaseExpired : CloseCode.LeaseDeleted,
        expired ? 'lease expired' : 'lease deleted',
      )
    }
  }

  stats(): RelayClusterStats {
    return {
      nodeId: this.nodeId,
      ...this.counters,
      presences: this.held.size,
      heartbeatRttMs: this.rtt.last,
      heartbeatRttSumMs: this.rtt.sum,
      heartbeatCount: this.rtt.count,
      heartbeatFailures: this.rtt.failures,
    }
  }

  async ready(): Promise<boolean> {
    try {
      return (await this.client.exists(this.nodeKey)) === 1
    } catch {
      return false
    }
  }

  /** Stop the heartbeat, deregister, finish presence updates, close peer pools and an owned client. */
  async close(): Promise<void> {
    clearInterval(this.timer)
    await Promise.all(this.pending)
    await this.client.del(this.nodeKey).catch(() => {})
    await this.hops.close()
    if (this.redis.owned) this.client.disconnect()
  }
}
