/** The status page's data: the relay's totals and one row per tunnel, with no secret in it. */
import { createHash } from 'node:crypto'
import { redact } from '../../types'
import type { RelayLease } from '../lease-store'
import type { RelayContext } from '../relay-context'
import type { RelayObserver } from './relay-observer'

/**
 * A route token shortened for display: its prefix and 5 characters (30 bits of its 192), enough to
 * tell tunnels apart, not to reach one (which takes the worker token anyway).
 * @example
 * ```ts
 * shortRoute('rt_AbCdEfGh...') // 'rt_AbCdE…'
 * ```
 */
export function shortRoute(routeToken: string): string {
  return `${routeToken.slice(0, 8)}…`
}

/** One tunnel row of the status page. */
export interface TunnelStatus {
  /** A stable row id (a hash of the lease id; not usable for anything else). */
  id: string
  route: string
  /** The owner API key's first 4 characters, as the logs show keys (`…` for a short key). */
  owner: string
  createdAt: string
  expiresAt: string
  agent: boolean
  inflight: number
  requests1m: number
  requests5m: number
  errors1m: number
  errors5m: number
}

/** The relay's totals on the status page. */
export interface RelayTotals {
  startedAt: string
  ready: boolean
  leases: number
  agents: number
  inflight: number
  maxInflight: number
  maxInflightPerLease: number
  requests: number
  errors: number
  requests1m: number
  errors1m: number
  bytesIn: number
  bytesOut: number
  memoryInUse: number
  agentReconnects: number
  rejected: Record<string, number>
}

/** What `GET /admin/status.json` answers. */
export interface RelayStatus {
  now: string
  relay: RelayTotals
  tunnels: TunnelStatus[]
}

/** Rows shown at most (the busiest and newest first). */
const MAX_ROWS = 500

const rowId = (leaseId: string) => createHash('sha256').update(leaseId).digest('hex').slice(0, 12)

/** Every lease worth a row: the store's live ones when it can list, those with an agent, and recent traffic. */
async function knownLeases(ctx: RelayContext, obs: RelayObserver, now: number): Promise<RelayLease[]> {
  const byId = new Map<string, RelayLease>()
  for (const lease of (await ctx.store.list?.(now)) ?? []) byId.set(lease.leaseId, lease)
  for (const s of ctx.sessions.values()) if (!byId.has(s.lease.leaseId)) byId.set(s.lease.leaseId, s.lease)
  for (const [id, t] of obs.tunnels) if (!byId.has(id) && t.lease.expiresAt > now) byId.set(id, t.lease)
  return [...byId.values()]
}

/**
 * The status page's data at this moment.
 * @example
 * ```ts
 * const status = await relayStatus(ctx, observer, ownerNames, () => true)
 * ```
 */
export async function relayStatus(
  ctx: RelayContext,
  obs: RelayObserver,
  /** The display prefix of each API key, by its SHA-256 (the lease's `ownerKeyHash`). */
  owners: ReadonlyMap<string, string>,
  ready: boolean,
): Promise<RelayStatus> {
  const now = Date.now()
  obs.prune(now)
  const tunnels = (await knownLeases(ctx, obs, now)).map((lease): TunnelStatus => {
    const counts = obs.tunnels.get(lease.leaseId)?.counts
    const m1 = counts?.sum(now, 1) ?? { requests: 0, errors: 0 }
    const m5 = counts?.sum(now) ?? { requests: 0, errors: 0 }
    const session = ctx.sessions.get(lease.leaseId)
    return {
      id: rowId(lease.leaseId),
      route: shortRoute(lease.routeToken),
      owner: owners.get(lease.ownerKeyHash) ?? 'unknown',
      createdAt: new Date(lease.createdAt).toISOString(),
      expiresAt: new Date(lease.expiresAt).toISOString(),
      agent: session !== undefined,
      inflight: session?.inflight.size ?? 0,
      requests1m: m1.requests,
      requests5m: m5.requests,
      errors1m: m1.errors,
      errors5m: m5.errors,
    }
  })
  tunnels.sort((a, b) => b.requests5m - a.requests5m || b.createdAt.localeCompare(a.createdAt))
  const { settings } = ctx
  const last = obs.total.sum(now, 1)
  return {
    now: new Date(now).toISOString(),
    relay: {
      startedAt: new Date(obs.startedAt).toISOString(),
      ready,
      leases: await ctx.store.count(now),
      agents: ctx.sessions.size,
      inflight: ctx.inflight,
      maxInflight: settings.maxInflight,
      maxInflightPerLease: settings.maxInflightPerLease,
      requests: obs.requests,
      errors: obs.errors,
      requests1m: last.requests,
      errors1m: last.errors,
      bytesIn: obs.bytesIn,
      bytesOut: obs.bytesOut,
      memoryInUse: ctx.memoryInUse(),
      agentReconnects: obs.reconnects,
      rejected: { ...ctx.shares.rejected },
    },
    tunnels: tunnels.slice(0, MAX_ROWS),
  }
}

/**
 * The owner column's text of each API key, by its SHA-256: its first 4 characters (`redact`).
 * @example
 * ```ts
 * ownerNames(['team-key-alice']).get(hash('team-key-alice')) // 'team…'
 * ```
 */
export function ownerNames(apiKeys: readonly string[]): Map<string, string> {
  return new Map(apiKeys.map((k) => [createHash('sha256').update(k).digest('hex'), redact(k)]))
}
