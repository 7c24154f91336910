/**
 * The options of {@link synthTunnel} and their checks: the limits, the backend URL, the API key
 * and the task-app keys the agent may inject.
 */
import { environmentApiKeys, messageOf, resolveSynthBackendUrl } from '@taskapp/core'
import type { SynthTunnelEvent } from './agent/agent'
import { SynthTunnelError, SynthTunnelErrorCode } from './errors'
import type { Logger } from './types'

/** Options of {@link synthTunnel}. */
export interface SynthTunnelOptions {
  /**
   * Backend (or self-hosted relay) base URL; the lease API is `{backendUrl}/api/v1/synthtunnel/leases`.
   * A trailing `/api` is tolerated.
   * @default `resolveSynthBackendUrl({ env })` of `@taskapp/core`: `SYNTH_BACKEND_URL_OVERRIDE`
   * (`local`, `dev`, `prod` or a URL), then `SYNTH_BACKEND_URL`, else `'https://api.usesynth.ai'`
   */
  backendUrl?: string
  /**
   * Other nodes of the same relay cluster (http(s) base URLs, like `backendUrl`). The agent dials the
   * lease's agent URL first, then, on each reconnect attempt, the next of these in turn, so it comes
   * back on a live node when its node dies; leasing and closing fall back to them when `backendUrl`
   * is unreachable. Not needed when all nodes sit behind one load-balanced URL.
   * @default []
   */
  relayUrls?: readonly string[]
  /** Bearer key for the lease API. @default process.env.SYNTH_API_KEY */
  apiKey?: string
  /**
   * Keys the agent injects into forwarded requests (`X-API-Key`, `X-API-Keys`, `Authorization`),
   * overwriting what the caller sent. Empty: inject nothing.
   * @default the first of ENVIRONMENT_API_KEY, DEV_ENVIRONMENT_API_KEY, dev_environment_api_key, then ENVIRONMENT_API_KEY_ALIASES (comma list), deduplicated: the keys the task server accepts
   */
  localApiKeys?: readonly string[]
  /**
   * Whether the agent injects {@link SynthTunnelOptions.localApiKeys} at all. Turn it off when the
   * task app verifies container tokens: with it on, anyone holding the worker token gets the task
   * app's full API-key rights. Off, the agent injects no key and forwards the caller's own
   * `X-API-Key` / `X-API-Keys` and `X-Synth-Container-Authorization` untouched (`Authorization` is
   * always dropped), so a relayed request needs a token or a key its caller sent.
   * @default true
   */
  injectApiKey?: boolean
  /** Most requests the agent holds at once; more are answered with an error frame. @default the lease's `limits.max_inflight` (128) */
  maxInflight?: number
  /** Largest response forwarded. @default the lease's `limits.max_response_bytes` (200 MB) */
  maxResponseBytes?: number
  /** Request-body bytes the agent buffers before it stops reading the relay. @default 16 MiB */
  maxBufferedBytes?: number
  /** Deadline for ATTACH_ACK. @default 10_000 */
  attachTimeoutMs?: number
  /** Deadline for the lease request. @default SYNTH_TUNNEL_TIMEOUT_SEC × 1000, else 30_000 */
  leaseTimeoutMs?: number
  /** Deadline for deleting the lease in `close()`. @default 5_000 */
  closeTimeoutMs?: number
  /** Lease lifetime asked for. @default 3600 */
  requestedTtlSeconds?: number
  /** WebSocket ping period; a missing pong drops the connection. @default 20_000 */
  pingIntervalMs?: number
  /** First reconnect delay ceiling; doubles per failure; each delay is drawn between half and all of it. @default 250 */
  reconnectInitialMs?: number
  /** Reconnect delay ceiling cap. @default 5_000 */
  reconnectMaxMs?: number
  /**
   * Longest the agent stops reading the relay because the local server does not read a request
   * body; then that request is failed so the others go on.
   * @default 10_000
   */
  stallTimeoutMs?: number
  /**
   * Offer binary body frames (a taskapp extension negotiated in ATTACH); used only when the relay
   * accepts, otherwise the reference base64 JSON frames.
   * @default true
   */
  binaryFrames?: boolean
  /**
   * Hand requests to the local server in memory when `open()`'s target carries the server itself
   * (`target.server`, set by `InProcessTaskApp`): no loopback TCP hop. `true` / `'request'`: each
   * request becomes an `IncomingMessage` / `ServerResponse` pair emitted as `'request'` on the
   * server (no HTTP bytes on the way in: the cheapest). `'connection'`: an in-memory socket pair
   * given to the server as a `'connection'` (Node's parser, the server's connection events and
   * timeouts apply). `false` forces the socket path (connect to `localUrl`), e.g. to compare.
   * Without `target.server` the socket path is used either way.
   * @default true
   */
  inProcess?: boolean | 'request' | 'connection'
  /** `agent_id` / `client_instance_id`. @default the content of ~/.synth/client_instance_id, else a random `session-<hex>` */
  clientInstanceId?: string
  /** pino-compatible logger. @default silent */
  logger?: Logger
  /** Called on connected / disconnected / reconnecting / closed. */
  onEvent?: (event: SynthTunnelEvent) => void
  /** Environment to read defaults from. @default process.env */
  env?: Readonly<Record<string, string | undefined>>
  /**
   * Aborts `open()` while it runs (like `open`'s own `signal`), and closes every tunnel opened from
   * this backend when it fires, exactly as `close()` does.
   */
  signal?: AbortSignal
}

/** Options of {@link synthTunnel} that must be positive numbers when given. */
export const POSITIVE_OPTIONS = [
  'maxInflight',
  'maxResponseBytes',
  'maxBufferedBytes',
  'attachTimeoutMs',
  'leaseTimeoutMs',
  'closeTimeoutMs',
  'requestedTtlSeconds',
  'pingIntervalMs',
  'reconnectInitialMs',
  'reconnectMaxMs',
  'stallTimeoutMs',
] as const

export function positiveInt(name: string, value: number | undefined): void {
  if (value === undefined) return
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.InvalidOptions,
      `synthTunnel: ${name} must be a positive number, got ${String(value)}.`,
    )
  }
}

/** Throws `InvalidOptions` unless the numeric options are positive and `localApiKeys` is an array. */
export function checkLimitOptions(options: SynthTunnelOptions): void {
  for (const key of POSITIVE_OPTIONS) {
    positiveInt(key, options[key])
  }
  if (options.injectApiKey !== undefined && typeof options.injectApiKey !== 'boolean') {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.InvalidOptions,
      `synthTunnel: injectApiKey must be a boolean, got ${typeof options.injectApiKey}.`,
    )
  }
  if (options.localApiKeys !== undefined && !Array.isArray(options.localApiKeys)) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.InvalidOptions,
      'synthTunnel: localApiKeys must be an array of strings.',
    )
  }
}

/**
 * The backend base URL: `backendUrl`, else `SYNTH_BACKEND_URL_OVERRIDE` / `SYNTH_BACKEND_URL` of
 * `env`, else Synth's production URL (`@taskapp/core`'s `resolveSynthBackendUrl`), without
 * trailing slashes or `/api`. A bad value throws `InvalidOptions` with core's error as `cause`.
 */
export function resolveBackendUrl(
  backendUrl: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string {
  try {
    return resolveSynthBackendUrl({ backendUrl, env }).url
  } catch (err) {
    throw new SynthTunnelError(SynthTunnelErrorCode.InvalidOptions, `synthTunnel: ${messageOf(err)}`, {
      cause: err,
    })
  }
}

/**
 * `relayUrls` checked (http(s) URLs) and normalized as `backendUrl` is (no trailing slash or `/api`).
 * @throws SynthTunnelError `InvalidOptions` naming the bad entry.
 */
export function resolveRelayUrls(relayUrls: readonly string[] | undefined): string[] {
  if (relayUrls === undefined) return []
  if (!Array.isArray(relayUrls))
    throw new SynthTunnelError(
      SynthTunnelErrorCode.InvalidOptions,
      'synthTunnel: relayUrls must be an array of http(s) URLs.',
    )
  return relayUrls.map((raw: unknown) => {
    try {
      const u = new URL(String(raw))
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError('not http(s)')
      return u.href.replace(/\/+$/, '').replace(/\/api$/, '')
    } catch (err) {
      throw new SynthTunnelError(
        SynthTunnelErrorCode.InvalidOptions,
        `synthTunnel: relayUrls entries must be http(s) URLs of relay nodes, got "${String(raw)}".`,
        { cause: err },
      )
    }
  })
}

/** Throws `InvalidOptions` when `signal` is given but is not an `AbortSignal`. */
export function checkSignalOption(signal: AbortSignal | undefined): void {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.InvalidOptions,
      'synthTunnel: signal must be an AbortSignal (e.g. AbortController().signal).',
    )
  }
}

/**
 * Keys to inject: exactly the keys the task server accepts from the same environment
 * (`@taskapp/core`'s `environmentApiKeys`: the first of `ENVIRONMENT_API_KEY`,
 * `DEV_ENVIRONMENT_API_KEY`, `dev_environment_api_key`, then `ENVIRONMENT_API_KEY_ALIASES`).
 */
export function localApiKeysFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string[] {
  return environmentApiKeys(env)
}

/** `apiKey` when set; throws `ApiKeyMissing` otherwise. */
export function requireApiKey(apiKey: string | undefined): string {
  if (!apiKey) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.ApiKeyMissing,
      'SynthTunnel needs an API key: pass apiKey or set SYNTH_API_KEY (for a self-hosted relay, one of its apiKeys).',
    )
  }
  return apiKey
}
