import { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
import type { RelayServerOptions } from './relay-server'
import { adminOptionsFromEnv } from './admin/admin-env'

function num(env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const raw = env[name]?.trim()
  if (!raw) return undefined
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.RelayInvalidOptions,
      `${name} must be a non-negative number, got "${raw}".`,
    )
  }
  return value
}

const TRUE = new Set(['1', 'true', 'yes', 'on'])
const FALSE = new Set(['0', 'false', 'no', 'off'])

function bool(env: Readonly<Record<string, string | undefined>>, name: string): boolean | undefined {
  const raw = env[name]?.trim()
  if (!raw) return undefined
  const lower = raw.toLowerCase()
  if (TRUE.has(lower)) return true
  if (FALSE.has(lower)) return false
  throw new SynthTunnelError(
    SynthTunnelErrorCode.RelayInvalidOptions,
    `${name} must be 1, true, yes or on (or 0, false, no, off), got "${raw}".`,
  )
}

/** A positive integer from `env[name]` (a count of leases), or `undefined` when unset. */
function int(env: Readonly<Record<string, string | undefined>>, name: string): number | undefined {
  const raw = env[name]?.trim()
  if (!raw) return undefined
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)) || Number(raw) < 1) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.RelayInvalidOptions,
      `${name} must be a positive integer, got "${raw}".`,
    )
  }
  return Number(raw)
}

/**
 * Relay options from environment variables (for `taskapp relay` and containers). Flags given
 * by a CLI should be spread over the result.
 *
 * | variable | option |
 * |---|---|
 * | `TASKAPP_RELAY_PORT` (else `PORT`) | `port` |
 * | `TASKAPP_RELAY_HOST` | `host` |
 * | `TASKAPP_RELAY_PUBLIC_BASE_URL` | `publicBaseUrl` |
 * | `TASKAPP_RELAY_API_KEYS` (comma list) | `apiKeys` |
 * | `TASKAPP_RELAY_MAX_INFLIGHT` | `maxInflight` |
 * | `TASKAPP_RELAY_MAX_INFLIGHT_PER_LEASE` | `maxInflightPerLease` |
 * | `TASKAPP_RELAY_MAX_INFLIGHT_PER_KEY` | `maxInflightPerKey` |
 * | `TASKAPP_RELAY_BODY_IDLE_TIMEOUT_MS` | `bodyIdleTimeoutMs` |
 * | `TASKAPP_RELAY_BODY_MIN_BYTES_PER_SECOND` | `bodyMinBytesPerSecond` |
 * | `TASKAPP_RELAY_BODY_RATE_WINDOW_MS` | `bodyRateWindowMs` |
 * | `TASKAPP_RELAY_MEMORY_BUDGET_BYTES` | `memoryBudgetBytes` |
 * | `TASKAPP_RELAY_MAX_REQUEST_BYTES` | `maxRequestBytes` |
 * | `TASKAPP_RELAY_MAX_RESPONSE_BYTES` | `maxResponseBytes` |
 * | `TASKAPP_RELAY_DEADLINE_MS` | `defaultDeadlineMs` |
 * | `TASKAPP_RELAY_LEASE_TTL_SECONDS` | `leaseTtlSeconds` |
 * | `TASKAPP_RELAY_ALLOW_SET_COOKIE` (`1`/`true`/`yes`/`on`, `0`/`false`/`no`/`off`) | `allowSetCookie` |
 * | `TASKAPP_RELAY_MAX_LEASES` | `maxLeases` |
 * | `TASKAPP_RELAY_MAX_LEASES_PER_KEY` | `maxLeasesPerKey` |
 * | `TASKAPP_RELAY_ADMIN_KEY` (or `TASKAPP_RELAY_ADMIN_KEY_FILE`, a file holding it) | `adminKey` |
 * | `TASKAPP_RELAY_ADMIN_PORT`, `TASKAPP_RELAY_ADMIN_HOST` | `adminPort`, `adminHost` |
 *
 * @example
 * ```ts
 * const relay = await createRelayServer({ ...relayOptionsFromEnv(), port: 8700 })
 * ```
 */
export function relayOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): RelayServerOptions {
  const out: RelayServerOptions = {}
  const port = num(env, 'TASKAPP_RELAY_PORT') ?? num(env, 'PORT')
  if (port !== undefined) out.port = port
  const host = env.TASKAPP_RELAY_HOST?.trim()
  if (host) out.host = host
  const base = env.TASKAPP_RELAY_PUBLIC_BASE_URL?.trim()
  if (base) out.publicBaseUrl = base
  const keys = (env.TASKAPP_RELAY_API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean)
  if (keys.length) out.apiKeys = keys
  const numeric = [
    ['TASKAPP_RELAY_MAX_INFLIGHT', 'maxInflight'],
    ['TASKAPP_RELAY_MAX_INFLIGHT_PER_LEASE', 'maxInflightPerLease'],
    ['TASKAPP_RELAY_MAX_INFLIGHT_PER_KEY', 'maxInflightPerKey'],
    ['TASKAPP_RELAY_BODY_IDLE_TIMEOUT_MS', 'bodyIdleTimeoutMs'],
    ['TASKAPP_RELAY_BODY_MIN_BYTES_PER_SECOND', 'bodyMinBytesPerSecond'],
    ['TASKAPP_RELAY_BODY_RATE_WINDOW_MS', 'bodyRateWindowMs'],
    ['TASKAPP_RELAY_MEMORY_BUDGET_BYTES', 'memoryBudgetBytes'],
    ['TASKAPP_RELAY_MAX_REQUEST_BYTES', 'maxRequestBytes'],
    ['TASKAPP_RELAY_MAX_RESPONSE_BYTES', 'maxResponseBytes'],
    ['TASKAPP_RELAY_DEADLINE_MS', 'defaultDeadlineMs'],
    ['TASKAPP_RELAY_LEASE_TTL_SECONDS', 'leaseTtlSeconds'],
  ] as const
  for (const [name, key] of numeric) {
    const value = num(env, name)
    if (value !== undefined) out[key] = value
  }
  const allowSetCookie = bool(env, 'TASKAPP_RELAY_ALLOW_SET_COOKIE')
  if (allowSetCookie !== undefined) out.allowSetCookie = allowSetCookie
  const counts = [
    ['TASKAPP_RELAY_MAX_LEASES', 'maxLeases'],
    ['TASKAPP_RELAY_MAX_LEASES_PER_KEY', 'maxLeasesPerKey'],
  ] as const
  for (const [name, key] of counts) {
    const value = int(env, name)
    if (value !== undefined) out[key] = value
  }
  return { ...out, ...adminOptionsFromEnv(env) }
}
