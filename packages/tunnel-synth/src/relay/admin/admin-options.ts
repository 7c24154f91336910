/** The relay's operating options: admin key, admin port, readiness, and the cluster probe. */
import { SynthTunnelError, SynthTunnelErrorCode } from '../../errors'
import type { RelayClusterStats } from '../cluster/cluster'

/**
 * A relay cluster as the metrics and `/readyz` see it: its counters, and whether it can serve. The
 * relay's own `cluster` (option `cluster`) is one; `clusterProbe` replaces it (tests, a custom cluster).
 */
export interface RelayClusterProbe {
  stats(): RelayClusterStats
  /** `true` when Redis answers and this node is registered. */
  ready(): Promise<boolean>
}

/** Options of {@link createRelayServer} for operating it (mixed into `RelayServerOptions`). */
export interface RelayAdminOptions {
  /**
   * Key that opens the status page (`/admin`) and `/metrics` on the main port: sent as
   * `Authorization: Bearer <key>`, or typed into the page's login form (which sets an HttpOnly,
   * SameSite=Strict cookie). At least 16 characters, and none of `apiKeys`. Env
   * `TASKAPP_RELAY_ADMIN_KEY` or `TASKAPP_RELAY_ADMIN_KEY_FILE`.
   * @default none: `/admin` and `/metrics` on the main port answer 404 `TUNNEL_ADMIN_DISABLED`
   */
  adminKey?: string
  /** More admin keys (all accepted), e.g. while rotating. @default [] */
  adminKeys?: readonly string[]
  /**
   * A second port for `/metrics`, `/livez`, `/readyz` and the status page, apart from public
   * traffic. On a loopback `adminHost` `/metrics` needs no key there; elsewhere it needs the
   * admin key. 0 picks a free port. @default none
   */
  adminPort?: number
  /** Interface of `adminPort`; one that is not loopback needs an admin key. @default '127.0.0.1' */
  adminHost?: string
  /**
   * When `/readyz` says ready (besides listening and not closing), e.g. a check of a store the
   * relay depends on. Answers within 2 s or counts as not ready. @default always ready
   */
  readiness?: () => boolean | Promise<boolean>
  /** A relay cluster's probe: its counters become metrics, and `/readyz` asks its `ready()`. */
  clusterProbe?: RelayClusterProbe
}

/** {@link RelayAdminOptions} checked, with defaults. */
export interface AdminSettings {
  keys: string[]
  port: number | undefined
  host: string
  readiness: (() => boolean | Promise<boolean>) | undefined
  probe: RelayClusterProbe | undefined
  /** `/metrics` on the admin port needs the key (its host is not loopback). */
  metricsNeedKeyOnAdminPort: boolean
}

/** Loopback hosts: `localhost`, `127.x.x.x`, `::1`. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

function invalid(message: string): SynthTunnelError {
  return new SynthTunnelError(SynthTunnelErrorCode.RelayInvalidOptions, `createRelayServer: ${message}`)
}

/** Shortest admin key accepted: a login form invites guessing. */
export const MIN_ADMIN_KEY_LENGTH = 16

function adminKeys(options: RelayAdminOptions, apiKeys: readonly string[]): string[] {
  const keys = [...(options.adminKey === undefined ? [] : [options.adminKey]), ...(options.adminKeys ?? [])]
  for (const k of keys) {
    if (typeof k !== 'string' || k.trim() !== k || k.length < MIN_ADMIN_KEY_LENGTH) {
      throw invalid(
        `adminKey must be a string of at least ${MIN_ADMIN_KEY_LENGTH} characters without surrounding spaces ` +
          '(generate one: openssl rand -base64 24).',
      )
    }
    if (apiKeys.includes(k)) throw invalid('adminKey must differ from every API key (apiKeys).')
  }
  return keys
}

/**
 * Check the admin options against the relay's API keys.
 * @throws SynthTunnelError `TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS` naming the option.
 * @example
 * ```ts
 * const admin = resolveAdminOptions({ adminKey: 'a-long-admin-key-123' }, ['team-key'])
 * ```
 */
export function resolveAdminOptions(options: RelayAdminOptions, apiKeys: readonly string[]): AdminSettings {
  const keys = adminKeys(options, apiKeys)
  const port = options.adminPort
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw invalid(`adminPort must be an integer 0..65535, got ${String(port)}.`)
  }
  const host = options.adminHost ?? '127.0.0.1'
  if (typeof host !== 'string' || host === '') throw invalid('adminHost must be a non-empty host name.')
  if (!isLoopback(host) && keys.length === 0) {
    throw invalid(`adminHost ${host} is not loopback: set adminKey too, or keep the admin port on 127.0.0.1.`)
  }
  if (options.readiness !== undefined && typeof options.readiness !== 'function') {
    throw invalid('readiness must be a function returning a boolean (or a promise of one).')
  }
  const probe = options.clusterProbe
  if (probe !== undefined && (typeof probe.stats !== 'function' || typeof probe.ready !== 'function')) {
    throw invalid('clusterProbe must have stats() and ready().')
  }
  return {
    keys,
    port,
    host,
    readiness: options.readiness,
    probe,
    metricsNeedKeyOnAdminPort: !isLoopback(host),
  }
}
