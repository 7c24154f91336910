import { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
import type { RelayServerOptions } from './relay-server'

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
  return out
}
