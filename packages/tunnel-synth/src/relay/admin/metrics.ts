/**
 * `/metrics`: the relay's counters in Prometheus text format (prom-client), one registry per relay,
 * read at scrape time from the relay and its {@link RelayObserver}. Names are listed in the README
 * ("Operating a relay").
 */
import { Counter, Gauge, Registry } from 'prom-client'
import type { RelayContext } from '../relay-context'
import type { RelayClusterStats } from '../cluster/cluster'
import type { RelayClusterProbe } from './admin-options'
import type { RelayObserver } from './relay-observer'
import { shortRoute } from './status-data'

/** Set a counter to `value` (prom-client counters only go up: reset, then add). */
function setCounter<T extends string>(
  c: Counter<T>,
  value: number,
  labels?: Partial<Record<T, string>>,
): void {
  if (labels) c.inc(labels, value)
  else c.inc(value)
}

function relayGauges(reg: Registry, ctx: RelayContext): void {
  const registers = [reg]
  new Gauge({
    name: 'taskapp_relay_leases',
    help: 'Live leases (tunnels) the lease store holds.',
    registers,
    async collect() {
      this.set(await ctx.store.count(Date.now()))
    },
  })
  new Gauge({
    name: 'taskapp_relay_agents_attached',
    help: 'Agents attached to this relay.',
    registers,
    collect() {
      this.set(ctx.sessions.size)
    },
  })
  new Gauge({
    name: 'taskapp_relay_inflight_requests',
    help: 'Public requests in flight on this relay.',
    registers,
    collect() {
      this.set(ctx.inflight)
    },
  })
  new Gauge({
    name: 'taskapp_relay_lease_inflight_requests',
    help: 'Requests in flight per tunnel with an agent attached (route token shortened).',
    labelNames: ['route'],
    registers,
    collect() {
      this.reset()
      for (const s of ctx.sessions.values())
        this.set({ route: shortRoute(s.lease.routeToken) }, s.inflight.size)
    },
  })
  const { maxInflight, maxInflightPerLease, maxInflightPerKey, memoryBudgetBytes } = ctx.settings
  new Gauge({
    name: 'taskapp_relay_inflight_limit',
    help: 'In-flight limits: the relay, one lease share, one API key share.',
    labelNames: ['share'],
    registers,
    collect() {
      this.set({ share: 'relay' }, maxInflight)
      this.set({ share: 'lease' }, maxInflightPerLease)
      this.set({ share: 'key' }, maxInflightPerKey)
    },
  })
  new Gauge({
    name: 'taskapp_relay_memory_in_use_bytes',
    help: `Bytes held for bodies in transit (budget ${memoryBudgetBytes}).`,
    registers,
    collect() {
      this.set(ctx.memoryInUse())
    },
  })
}

function relayCounters(reg: Registry, ctx: RelayContext, obs: RelayObserver): void {
  const registers = [reg]
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset()
        setCounter(this, read())
      },
    })
  counter('taskapp_relay_request_bytes_total', 'Request body bytes received from callers.', () => obs.bytesIn)
  counter('taskapp_relay_response_bytes_total', 'Response body bytes sent to callers.', () => obs.bytesOut)
  counter(
    'taskapp_relay_agent_attaches_total',
    'Agent attaches (first ones and reconnects).',
    () => obs.attaches,
  )
  counter(
    'taskapp_relay_agent_reconnects_total',
    'Agent attaches to a lease that had one before.',
    () => obs.reconnects,
  )
  new Counter({
    name: 'taskapp_relay_responses_total',
    help: 'Answers to public requests by status and TUNNEL_* code (none: the task app answered).',
    labelNames: ['status', 'code'],
    registers,
    collect() {
      this.reset()
      for (const [key, n] of obs.answers) {
        const [status = '', code = ''] = key.split(' ')
        setCounter(this, n, { status, code })
      }
    },
  })
  new Counter({
    name: 'taskapp_relay_rejected_total',
    help: 'Requests refused (429) or cut (408) by the limit that applied.',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset()
      const rejected: Record<string, number> = { ...ctx.shares.rejected }
      for (const [reason, n] of Object.entries(rejected)) setCounter(this, n, { reason })
    },
  })
}

/** The cluster's plain counters: name, help, and how to read each from its stats. */
const CLUSTER_COUNTERS: ReadonlyArray<[string, string, (s: RelayClusterStats) => number]> = [
  ['taskapp_relay_cluster_forward_failures_total', 'Forward hops that failed.', (s) => s.forwardFailures],
  [
    'taskapp_relay_cluster_agents_taken_over_total',
    'Agents taken over from a node that went away.',
    (s) => s.takeovers,
  ],
  [
    'taskapp_relay_cluster_hops_refused_total',
    'Hops from other nodes refused for a missing or wrong cluster credential.',
    (s) => s.hopsRefused,
  ],
  [
    'taskapp_relay_cluster_heartbeat_failures_total',
    'Presence heartbeats to Redis that failed (Redis down or slow).',
    (s) => s.heartbeatFailures,
  ],
  [
    'taskapp_relay_cluster_redis_rtt_seconds_total',
    'Sum of the Redis round-trip times measured.',
    (s) => s.heartbeatRttSumMs / 1000,
  ],
  ['taskapp_relay_cluster_redis_round_trips_total', 'Redis round trips measured.', (s) => s.heartbeatCount],
]

function clusterMetrics(reg: Registry, probe: RelayClusterProbe): void {
  const registers = [reg]
  const counter = (name: string, help: string, read: (s: RelayClusterStats) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset()
        setCounter(this, read(probe.stats()))
      },
    })
  new Counter({
    name: 'taskapp_relay_cluster_forward_hops_total',
    help: 'Requests forwarded between relay nodes (out: to the node holding the agent; in: from another node).',
    labelNames: ['direction'],
    registers,
    collect() {
      const s = probe.stats()
      this.reset()
      setCounter(this, s.forwardsOut, { direction: 'out' })
      setCounter(this, s.forwardsIn, { direction: 'in' })
    },
  })
  for (const [name, help, read] of CLUSTER_COUNTERS) counter(name, help, read)
  new Gauge({
    name: 'taskapp_relay_cluster_redis_rtt_seconds',
    help: 'The last Redis round-trip time.',
    registers,
    collect() {
      const last = probe.stats().heartbeatRttMs
      if (last === undefined) this.reset()
      else this.set(last / 1000)
    },
  })
  new Gauge({
    name: 'taskapp_relay_cluster_presence_held',
    help: 'Presence records (tunnels whose agent is on this node) held.',
    registers,
    collect() {
      this.set(probe.stats().presences)
    },
  })
}

/**
 * The Prometheus registry of one relay (its own, not prom-client's global one).
 * @example
 * ```ts
 * const text = await createRelayMetrics(ctx, observer).metrics()
 * ```
 */
export function createRelayMetrics(
  ctx: RelayContext,
  obs: RelayObserver,
  probe?: RelayClusterProbe,
): Registry {
  const reg = new Registry()
  relayGauges(reg, ctx)
  relayCounters(reg, ctx, obs)
  if (probe) clusterMetrics(reg, probe)
  return reg
}
