/** The relay's options, checked and resolved once into {@link RelaySettings}. */
import { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
import { DEFAULT_MAX_INFLIGHT, DEFAULT_MAX_RESPONSE_BYTES, MAX_BODY_CHUNK_BYTES } from '../protocol/frames'
import type { Logger } from '../types'
import type { RelayAdminOptions } from './admin/admin-options'
import type { RelayClusterOptions } from './cluster/cluster-options'
import type { LeaseStore } from './lease-store'

/**
 * Defaults of the relay's admission limits and body timing (the README's "Running a shared relay"
 * explains them). One lease keeps the agent's own default cap (128); one key gets two leases' worth;
 * the relay holds four leases' worth, so one tenant gone wrong leaves most of it to the others.
 */
export const RELAY_LIMIT_DEFAULTS = {
  maxInflight: 4 * DEFAULT_MAX_INFLIGHT,
  maxInflightPerLease: DEFAULT_MAX_INFLIGHT,
  maxInflightPerKey: 2 * DEFAULT_MAX_INFLIGHT,
  bodyIdleTimeoutMs: 10_000,
  bodyMinBytesPerSecond: 1024,
  bodyRateWindowMs: 10_000,
  defaultDeadlineMs: 3_600_000,
} as const

/** Options of {@link createRelayServer}. */
export interface RelayServerOptions extends RelayAdminOptions {
  /** Port to listen on; 0 picks a free one. @default 0 */
  port?: number
  /** Interface to bind. @default '127.0.0.1' */
  host?: string
  /**
   * Public origin of the relay as callers see it (e.g. `https://relay.example.com`). Public URLs are
   * `{publicBaseUrl}/s/<route_token>`; the agent URL is its `ws(s)://` twin plus `/api/v1/synthtunnel/agent`.
   * @default the relay's own URL, e.g. http://127.0.0.1:PORT
   */
  publicBaseUrl?: string
  /**
   * Bearer keys allowed to create and delete leases. Empty or absent: the relay generates one random
   * key, exposed as `relay.apiKey` (never logged beyond a prefix).
   * @default one generated key
   */
  apiKeys?: readonly string[]
  /**
   * Requests in flight across all agents; more get 429 `TUNNEL_CAPACITY_EXCEEDED`. The shares below
   * keep one tenant from taking all of them.
   * @default 512
   */
  maxInflight?: number
  /**
   * Requests in flight through one lease (one tunnel); more get 429 `TUNNEL_LEASE_IN_FLIGHT_LIMIT`.
   * Also sent to agents as the lease's `limits.max_inflight`. At most `maxInflight`.
   * @default 128 (or `maxInflight` when that is lower)
   */
  maxInflightPerLease?: number
  /**
   * Requests in flight through all leases created with one API key; more get 429
   * `TUNNEL_KEY_IN_FLIGHT_LIMIT`. At most `maxInflight`.
   * @default 256 (or `maxInflight` when that is lower)
   */
  maxInflightPerKey?: number
  /**
   * A request body with no byte for this long is cut: 408 `TUNNEL_REQUEST_BODY_TIMEOUT` (the agent
   * gets CANCEL, the slot is freed). Time the relay itself pauses the upload (agent behind) does
   * not count. 0 turns the rule off.
   * @default 10_000
   */
  bodyIdleTimeoutMs?: number
  /**
   * Slowest request body accepted, in bytes per second averaged over each `bodyRateWindowMs`
   * (the first window is the grace period): a body that brings fewer bytes in a window is cut with
   * 408 `TUNNEL_REQUEST_BODY_TIMEOUT`. A byte a second cannot hold a slot past one window. 0 turns
   * the rule off.
   * @default 1024
   */
  bodyMinBytesPerSecond?: number
  /** Window over which `bodyMinBytesPerSecond` is averaged. @default 10_000 */
  bodyRateWindowMs?: number
  /** Bytes the relay may hold for bodies in transit (WebSocket send buffers + caller write buffers). @default 64 MiB */
  memoryBudgetBytes?: number
  /** Largest request body; more gets 413. @default 200_000_000 */
  maxRequestBytes?: number
  /** Largest response body; more aborts the response. @default 200_000_000 */
  maxResponseBytes?: number
  /**
   * Deadline of a public request (sent to the agent as `deadline_ms`); past it, 504. Long, for
   * rollouts that run up to an hour: the in-flight shares, not this deadline, protect other tenants.
   * @default 3_600_000
   */
  defaultDeadlineMs?: number
  /** Longest lease lifetime granted (requests ask via `requested_ttl_seconds`). @default 3600 */
  leaseTtlSeconds?: number
  /**
   * Leases one API key may hold at once (expired ones do not count); past it, lease creation with
   * that key gets 429 `TUNNEL_LEASES_PER_KEY_LIMIT` until the key deletes a lease or one expires.
   * Keeps one tenant (or one leaking client) from taking every lease of the relay.
   * @default 100
   */
  maxLeasesPerKey?: number
  /**
   * Leases the relay holds at once, across all keys (expired ones do not count); past it, lease
   * creation gets 429 `TUNNEL_LEASES_LIMIT`. Bounds the relay's lease memory and lease file.
   * @default 2000
   */
  maxLeases?: number
  /** How long an agent has to send ATTACH after connecting. @default 10_000 */
  attachTimeoutMs?: number
  /** WebSocket ping period towards agents; a missing pong drops the agent. @default 20_000 */
  pingIntervalMs?: number
  /**
   * How long one caller may stay behind (not reading its response) while the agent's WebSocket is
   * paused on its behalf; then that request is dropped so the agent's other requests go on.
   * @default 10_000
   */
  stallTimeoutMs?: number
  /** Where leases live; share one between relay instances to survive a restart. @default in memory */
  leaseStore?: LeaseStore
  /**
   * Accept binary body frames when an agent offers them in ATTACH (a taskapp extension; agents
   * that do not offer it get the reference base64 JSON frames).
   * @default true
   */
  binaryFrames?: boolean
  /**
   * Pass an agent's `Set-Cookie` response headers on to callers. Off by default, because every
   * tunnel of a relay shares the relay's origin: a cookie one tunnel sets with `Path=/` reaches every
   * other tunnel, one set with `Path=/s/<another route>` plants a cookie in that tunnel, and a
   * `Path` scoped to the tunnel's own route does not isolate it either (RFC 6265 §8.5: paths of one
   * origin share cookies through scripts). Turn it on only when every tunnel on this relay belongs
   * to one party (env `TASKAPP_RELAY_ALLOW_SET_COOKIE=1` for `taskapp relay`).
   * @default false
   */
  allowSetCookie?: boolean
  /** pino-compatible logger; one DEBUG line per request. @default silent */
  logger?: Logger
  /**
   * Run as one node of a cluster sharing leases and agent presence through Redis (the README's
   * "Running a relay cluster"). The lease store defaults to Redis then. @default a single relay
   */
  cluster?: RelayClusterOptions
}

/** The relay's limits and timings, with defaults applied and derived budgets computed. */
export interface RelaySettings {
  port: number
  host: string
  maxInflight: number
  maxInflightPerLease: number
  maxInflightPerKey: number
  bodyIdleTimeoutMs: number
  bodyMinBytesPerSecond: number
  bodyRateWindowMs: number
  memoryBudgetBytes: number
  maxRequestBytes: number
  maxResponseBytes: number
  defaultDeadlineMs: number
  leaseTtlSeconds: number
  maxLeasesPerKey: number
  maxLeases: number
  attachTimeoutMs: number
  pingIntervalMs: number
  stallTimeoutMs: number
  binaryFrames: boolean
  allowSetCookie: boolean
  /** Bytes one caller may have queued before the agent's WebSocket is paused for it. */
  perRequestAllowance: number
  /** Bytes queued on one agent WebSocket before callers' uploads are paused. */
  wsHighWater: number
}

function invalid(message: string, cause?: unknown): SynthTunnelError {
  return new SynthTunnelError(
    SynthTunnelErrorCode.RelayInvalidOptions,
    `createRelayServer: ${message}`,
    cause === undefined ? undefined : { cause },
  )
}

function positive(name: string, value: number | undefined, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw invalid(
      `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(value)}.`,
    )
  }
  return value
}

function flag(name: string, value: boolean | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean')
    throw invalid(`${name} must be true or false, got ${JSON.stringify(value)}.`)
  return value
}

/** Default of {@link RelayServerOptions.maxLeasesPerKey}. */
export const DEFAULT_MAX_LEASES_PER_KEY = 100
/** Default of {@link RelayServerOptions.maxLeases}. */
export const DEFAULT_MAX_LEASES = 2000

function count(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalid(`${name} must be a positive integer, got ${String(value)}.`)
  }
  return value
}

/** An in-flight share: a positive integer, at most `maxInflight`; by default `fallback` capped by it. */
function share(name: string, value: number | undefined, fallback: number, maxInflight: number): number {
  if (value === undefined) return Math.min(fallback, maxInflight)
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalid(`${name} must be a positive integer, got ${String(value)}.`)
  }
  if (value > maxInflight) {
    throw invalid(`${name} (${value}) is above maxInflight (${maxInflight}): lower it, or raise maxInflight.`)
  }
  return value
}

function checkKeysAndUrl(options: RelayServerOptions): void {
  const keys = options.apiKeys
  if (keys !== undefined && (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string' || !k))) {
    throw invalid('apiKeys must be non-empty strings.')
  }
  if (options.publicBaseUrl === undefined) return
  try {
    const u = new URL(options.publicBaseUrl)
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError('not http(s)')
  } catch (err) {
    throw invalid(`publicBaseUrl must be an http(s) URL, got "${options.publicBaseUrl}".`, err)
  }
}

/**
 * Check the relay options and apply the defaults.
 * @throws SynthTunnelError `TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS` naming the option and what was expected.
 * @example
 * ```ts
 * const settings = resolveRelayOptions({ maxInflight: 64 })
 * ```
 */
export function resolveRelayOptions(options: RelayServerOptions): RelaySettings {
  const D = RELAY_LIMIT_DEFAULTS
  const port = positive('port', options.port, 0, true)
  if (!Number.isInteger(port) || port > 65535) throw invalid(`port must be 0..65535, got ${port}.`)
  const maxInflight = positive('maxInflight', options.maxInflight, D.maxInflight)
  const memoryBudgetBytes = positive('memoryBudgetBytes', options.memoryBudgetBytes, 64 * 1024 * 1024)
  const settings: RelaySettings = {
    port,
    host: options.host ?? '127.0.0.1',
    maxInflight,
    maxInflightPerLease: share(
      'maxInflightPerLease',
      options.maxInflightPerLease,
      D.maxInflightPerLease,
      maxInflight,
    ),
    maxInflightPerKey: share(
      'maxInflightPerKey',
      options.maxInflightPerKey,
      D.maxInflightPerKey,
      maxInflight,
    ),
    bodyIdleTimeoutMs: positive('bodyIdleTimeoutMs', options.bodyIdleTimeoutMs, D.bodyIdleTimeoutMs, true),
    bodyMinBytesPerSecond: positive(
      'bodyMinBytesPerSecond',
      options.bodyMinBytesPerSecond,
      D.bodyMinBytesPerSecond,
      true,
    ),
    bodyRateWindowMs: positive('bodyRateWindowMs', options.bodyRateWindowMs, D.bodyRateWindowMs),
    memoryBudgetBytes,
    maxRequestBytes: positive('maxRequestBytes', options.maxRequestBytes, DEFAULT_MAX_RESPONSE_BYTES),
    maxResponseBytes: positive('maxResponseBytes', options.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES),
    defaultDeadlineMs: positive('defaultDeadlineMs', options.defaultDeadlineMs, D.defaultDeadlineMs),
    leaseTtlSeconds: positive('leaseTtlSeconds', options.leaseTtlSeconds, 3600),
    maxLeasesPerKey: count('maxLeasesPerKey', options.maxLeasesPerKey, DEFAULT_MAX_LEASES_PER_KEY),
    maxLeases: count('maxLeases', options.maxLeases, DEFAULT_MAX_LEASES),
    attachTimeoutMs: positive('attachTimeoutMs', options.attachTimeoutMs, 10_000),
    pingIntervalMs: positive('pingIntervalMs', options.pingIntervalMs, 20_000),
    stallTimeoutMs: positive('stallTimeoutMs', options.stallTimeoutMs, 10_000),
    binaryFrames: options.binaryFrames ?? true,
    allowSetCookie: flag('allowSetCookie', options.allowSetCookie, false),
    perRequestAllowance: Math.max(MAX_BODY_CHUNK_BYTES, Math.floor(memoryBudgetBytes / (2 * maxInflight))),
    wsHighWater: Math.max(MAX_BODY_CHUNK_BYTES * 2, Math.min(1024 * 1024, Math.floor(memoryBudgetBytes / 4))),
  }
  checkKeysAndUrl(options)
  return settings
}
