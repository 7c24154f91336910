/** Options of a relay node in a cluster, and their checks. */
import { randomBytes } from 'node:crypto'
import { SynthTunnelError, SynthTunnelErrorCode } from '../../errors'
import type { RedisInput } from './redis-client'

/** `cluster` option of `createRelayServer`: the nodes share leases and agent presence through Redis. */
export interface RelayClusterOptions {
  /** A Redis URL (`redis://`, `rediss://`, `unix:///path`) or a connected ioredis client (not closed by the relay). */
  redis: RedisInput
  /**
   * The URL other nodes reach this node on (e.g. `http://10.0.0.5:8700`); internal hops go there.
   * @default the node's own URL (`http://<host>:<port>`), right only when every node runs on one host
   */
  advertiseUrl?: string
  /** Secret shared by every node (at least 16 characters); hops between nodes are signed with it. Secret: read it from a file or the environment. */
  secret: string
  /** This node's name in presence records. @default a random `node-<hex>` */
  nodeId?: string
  /** Prefix of every Redis key. @default 'taskapp:relay:' */
  prefix?: string
  /** Life of a presence record without heartbeat (a dead node's agents are forwarded to no longer than this). @default 3_000 */
  presenceTtlMs?: number
  /** Heartbeat period of presence records and of the node's registration. @default 1_000 */
  heartbeatMs?: number
}

/** {@link RelayClusterOptions} checked, with defaults. */
export interface ClusterSettings {
  redis: RedisInput
  /** `undefined` until the relay listens, when it defaults to the node's own URL. */
  advertiseUrl: string | undefined
  secret: string
  nodeId: string
  prefix: string
  presenceTtlMs: number
  heartbeatMs: number
}

function invalid(message: string): SynthTunnelError {
  return new SynthTunnelError(
    SynthTunnelErrorCode.RelayInvalidOptions,
    `createRelayServer: cluster.${message}`,
  )
}

function ms(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 10)
    throw invalid(`${name} must be a number of milliseconds ≥ 10, got ${String(value)}.`)
  return value
}

/**
 * Check `cluster` options and apply defaults.
 * @throws SynthTunnelError `TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS` naming the option.
 * @example
 * ```ts
 * resolveClusterOptions({ redis: 'redis://127.0.0.1:6379', advertiseUrl: 'http://10.0.0.5:8700', secret })
 * ```
 */
export function resolveClusterOptions(o: RelayClusterOptions): ClusterSettings {
  if (typeof o !== 'object' || o === null)
    throw invalid('must be an object ({ redis, advertiseUrl, secret }).')
  if (typeof o.redis !== 'string' && (typeof o.redis !== 'object' || o.redis === null))
    throw invalid('redis must be a Redis URL or an ioredis client.')
  let url: URL | undefined
  try {
    url = o.advertiseUrl === undefined ? undefined : new URL(o.advertiseUrl)
    if (url && url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('not http(s)')
  } catch {
    throw invalid(
      `advertiseUrl must be the http(s) URL other nodes reach this node on, got "${String(o.advertiseUrl)}".`,
    )
  }
  if (typeof o.secret !== 'string' || o.secret.trim().length < 16)
    throw invalid('secret must be a string of at least 16 characters, the same on every node.')
  if (o.nodeId !== undefined && (typeof o.nodeId !== 'string' || !/^[\w.:-]{1,64}$/.test(o.nodeId)))
    throw invalid('nodeId must be 1–64 letters, digits, or . _ : -')
  const presenceTtlMs = ms('presenceTtlMs', o.presenceTtlMs, 3_000)
  const heartbeatMs = ms('heartbeatMs', o.heartbeatMs, 1_000)
  if (heartbeatMs * 2 > presenceTtlMs)
    throw invalid(`heartbeatMs (${heartbeatMs}) must be at most half of presenceTtlMs (${presenceTtlMs}).`)
  return {
    redis: o.redis,
    advertiseUrl: url?.origin,
    secret: o.secret.trim(),
    nodeId: o.nodeId ?? `node-${randomBytes(6).toString('hex')}`,
    prefix: o.prefix ?? 'taskapp:relay:',
    presenceTtlMs,
    heartbeatMs,
  }
}
