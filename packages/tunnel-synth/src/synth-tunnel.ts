import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { SynthTunnelAgent } from './agent/agent'
import type { SynthTunnelEvent, SynthTunnelStats } from './agent/agent'
import { SynthTunnelError, SynthTunnelErrorCode } from './errors'
import { createLease, deleteLease } from './lease-client'
import type { Lease } from './lease-client'
import { WORKER_TOKEN_HEADER } from './protocol/frames'
import { redact, silentLogger } from './types'
import type { Logger, OpenTunnel, TunnelBackend, TunnelTarget } from './types'

/** Options of {@link synthTunnel}. */
export interface SynthTunnelOptions {
  /**
   * Backend (or self-hosted relay) base URL; the lease API is `{backendUrl}/api/v1/synthtunnel/leases`.
   * A trailing `/api` is tolerated.
   * @default process.env.SYNTH_BACKEND_URL ?? 'https://api.usesynth.ai'
   */
  backendUrl?: string
  /** Bearer key for the lease API. @default process.env.SYNTH_API_KEY */
  apiKey?: string
  /**
   * Keys the agent injects into forwarded requests (`X-API-Key`, `X-API-Keys`, `Authorization`),
   * overwriting what the caller sent. Empty: inject nothing.
   * @default ENVIRONMENT_API_KEY, DEV_ENVIRONMENT_API_KEY, then ENVIRONMENT_API_KEY_ALIASES (comma list), deduplicated
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

/** The open SynthTunnel: an `OpenTunnel` plus the worker token and lease details. */
export interface SynthOpenTunnel extends OpenTunnel {
  /** `public_url` of the lease. */
  readonly url: string
  /** `{ 'X-SynthTunnel-Worker-Token': workerToken }`. */
  readonly headers: Readonly<Record<string, string>>
  /** The token callers must present. Secret: do not log it. */
  readonly workerToken: string
  readonly leaseId: string
  readonly expiresAt: Date
  /** Whether the agent is attached right now. */
  readonly connected: boolean
  /** Set when the tunnel died on its own (`TASKAPP_ERR_SYNTH_LEASE_GONE`). */
  readonly error: SynthTunnelError | undefined
  /** What the agent holds now and the most it held (memory bounds, in-flight requests). */
  stats(): SynthTunnelStats
}

/** `synthTunnel()` as a backend. */
export interface SynthTunnelBackend extends TunnelBackend {
  readonly name: 'synthtunnel'
  open(target: TunnelTarget, options?: { signal?: AbortSignal }): Promise<SynthOpenTunnel>
}

/** Options of {@link synthTunnel} that must be positive numbers when given. */
const POSITIVE_OPTIONS = [
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

/** What `open()` needs from {@link synthTunnel}: its options and the defaults resolved once. */
interface BackendContext {
  readonly options: SynthTunnelOptions
  readonly env: Readonly<Record<string, string | undefined>>
  readonly backendUrl: string
  readonly logger: Logger
  readonly leaseTimeoutMs: number
}

/** Where the agent forwards requests: the local host (wildcards mapped to loopback), origin and port. */
interface LocalEndpoint {
  readonly host: string
  readonly origin: string
  readonly port: number
}

function positiveInt(name: string, value: number | undefined): void {
  if (value === undefined) return
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.InvalidOptions,
      `synthTunnel: ${name} must be a positive number, got ${String(value)}.`,
    )
  }
}

/** Throws `InvalidOptions` unless the numeric options are positive and `localApiKeys` is an array. */
function checkLimitOptions(options: SynthTunnelOptions): void {
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

/** `rawBackend` as an http(s) URL without trailing slashes or `/api`; throws `InvalidOptions` otherwise. */
function normalizeBackendUrl(rawBackend: string): string {
  try {
    const u = new URL(rawBackend)
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError('not http(s)')
    return u.href.replace(/\/+$/, '').replace(/\/api$/, '')
  } catch (err) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.InvalidOptions,
      `synthTunnel: backendUrl must be an http(s) URL, got "${rawBackend}".`,
      { cause: err },
    )
  }
}

/** Throws `InvalidOptions` when `signal` is given but is not an `AbortSignal`. */
function checkSignalOption(signal: AbortSignal | undefined): void {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.InvalidOptions,
      'synthTunnel: signal must be an AbortSignal (e.g. AbortController().signal).',
    )
  }
}

/** Keys to inject, collected from the environment like the reference `_collect_container_keys`. */
export function localApiKeysFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string[] {
  const keys = [
    env.ENVIRONMENT_API_KEY,
    env.DEV_ENVIRONMENT_API_KEY,
    ...(env.ENVIRONMENT_API_KEY_ALIASES ?? '').split(','),
  ]
    .map((k) => k?.trim())
    .filter((k): k is string => !!k)
  return [...new Set(keys)]
}

async function defaultClientInstanceId(): Promise<string> {
  try {
    const id = (await readFile(join(homedir(), '.synth', 'client_instance_id'), 'utf8')).trim()
    if (id.length >= 8) return id
  } catch {
    // no stored id: use an ephemeral one (we never write to the home directory)
  }
  return `session-${randomBytes(8).toString('hex')}`
}

/** The backend's and the `open()` call's signals as one (either aborts it), or `undefined` when neither is given. */
function combineSignals(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const given = signals.filter((x): x is AbortSignal => x !== undefined)
  return given.length > 1 ? AbortSignal.any(given) : given[0]
}

/** `apiKey` when set; throws `ApiKeyMissing` otherwise. */
function requireApiKey(apiKey: string | undefined): string {
  if (!apiKey) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.ApiKeyMissing,
      'SynthTunnel needs an API key: pass apiKey or set SYNTH_API_KEY (for a self-hosted relay, one of its apiKeys).',
    )
  }
  return apiKey
}

/** The local endpoint of `target`: wildcard or missing hosts become `127.0.0.1`; the origin falls back to host and port. */
function localEndpoint(target: TunnelTarget): LocalEndpoint {
  const host = target.host === '0.0.0.0' || target.host === '::' || !target.host ? '127.0.0.1' : target.host
  let origin: string
  try {
    origin = new URL(target.localUrl).origin
  } catch {
    origin = `http://${host.includes(':') ? `[${host}]` : host}:${target.port}`
  }
  return { host, origin, port: target.port }
}

/** Deletes the lease, logging (not throwing) a failure. */
async function removeLeaseQuietly(logger: Logger, input: Parameters<typeof deleteLease>[0]): Promise<void> {
  try {
    await deleteLease(input)
  } catch (err) {
    logger.warn(
      { err: (err as Error).message, leaseId: input.leaseId },
      'synthtunnel: could not delete the lease',
    )
  }
}

/** The agent for `lease`, configured from the options, the lease's limits and the defaults. */
function createAgent(
  ctx: BackendContext,
  lease: Lease,
  clientInstanceId: string,
  local: LocalEndpoint,
): SynthTunnelAgent {
  const { options } = ctx
  return new SynthTunnelAgent({
    connectUrl: lease.agentConnectUrl,
    agentToken: lease.agentToken,
    leaseId: lease.leaseId,
    agentId: clientInstanceId,
    localOrigin: local.origin,
    localTarget: { host: local.host, port: local.port },
    localApiKeys:
      options.injectApiKey === false ? [] : (options.localApiKeys ?? localApiKeysFromEnv(ctx.env)),
    maxInflight: options.maxInflight ?? lease.limits.maxInflight,
    maxResponseBytes: options.maxResponseBytes ?? lease.limits.maxResponseBytes,
    maxBufferedBytes: options.maxBufferedBytes ?? 16 * 1024 * 1024,
    attachTimeoutMs: options.attachTimeoutMs ?? 10_000,
    pingIntervalMs: options.pingIntervalMs ?? 20_000,
    reconnectInitialMs: options.reconnectInitialMs ?? 250,
    reconnectMaxMs: options.reconnectMaxMs ?? 5_000,
    binaryFrames: options.binaryFrames ?? true,
    stallTimeoutMs: options.stallTimeoutMs ?? 10_000,
    logger: ctx.logger,
    onEvent: options.onEvent,
  })
}

/** Closes the tunnel when the backend's `signal` fires (even if it already has), until the agent stops. */
function closeOnAbort(
  backendSignal: AbortSignal | undefined,
  agent: SynthTunnelAgent,
  close: () => Promise<void>,
): void {
  if (!backendSignal) return
  const onAbort = () => void close()
  backendSignal.addEventListener('abort', onAbort, { once: true })
  void agent.closed.then(() => backendSignal.removeEventListener('abort', onAbort))
  if (backendSignal.aborted) onAbort() // aborted between ATTACH_ACK and here
}

/** The {@link SynthOpenTunnel} view of a started `agent` on `lease`. */
function toOpenTunnel(lease: Lease, agent: SynthTunnelAgent, close: () => Promise<void>): SynthOpenTunnel {
  return {
    url: lease.publicUrl,
    headers: Object.freeze({ [WORKER_TOKEN_HEADER]: lease.workerToken }),
    workerToken: lease.workerToken,
    leaseId: lease.leaseId,
    expiresAt: lease.expiresAt,
    get connected() {
      return agent.connected
    },
    get error() {
      return agent.error
    },
    stats: () => agent.stats(),
    closed: agent.closed,
    close,
    [Symbol.asyncDispose]: close,
  }
}

/** `SynthTunnelBackend.open()`: creates a lease, attaches the agent, and returns the tunnel. */
async function openTunnel(
  ctx: BackendContext,
  target: TunnelTarget,
  openOptions: { signal?: AbortSignal },
): Promise<SynthOpenTunnel> {
  const { options, logger } = ctx
  const signal = combineSignals(options.signal, openOptions.signal)
  signal?.throwIfAborted()
  const apiKey = requireApiKey(options.apiKey ?? ctx.env.SYNTH_API_KEY)
  const local = localEndpoint(target)
  const clientInstanceId = options.clientInstanceId ?? (await defaultClientInstanceId())
  const lease = await createLease({
    backendUrl: ctx.backendUrl,
    apiKey,
    clientInstanceId,
    localTarget: { host: local.host, port: local.port },
    requestedTtlSeconds: options.requestedTtlSeconds ?? 3600,
    timeoutMs: ctx.leaseTimeoutMs,
    ...(signal ? { signal } : {}),
  })
  logger.info(
    { leaseId: lease.leaseId, url: lease.publicUrl, workerToken: redact(lease.workerToken) },
    'synthtunnel: lease created',
  )
  const closeTimeoutMs = options.closeTimeoutMs ?? 5_000
  const removeLease = () =>
    removeLeaseQuietly(logger, {
      backendUrl: ctx.backendUrl,
      apiKey,
      leaseId: lease.leaseId,
      timeoutMs: closeTimeoutMs,
    })
  const agent = createAgent(ctx, lease, clientInstanceId, local)
  try {
    await agent.start(signal)
  } catch (err) {
    await agent.stop()
    await removeLease()
    throw err
  }
  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      await agent.stop()
      await removeLease()
      logger.info({ leaseId: lease.leaseId }, 'synthtunnel: tunnel closed')
    })())
  closeOnAbort(options.signal, agent, close)
  return toOpenTunnel(lease, agent, close)
}

/**
 * The SynthTunnel backend: `open()` creates a lease, attaches the agent to the relay and resolves
 * an `OpenTunnel` whose `url` is the lease's `public_url`; callers send `tunnel.headers`.
 *
 * @example
 * ```ts
 * import { synthTunnel } from '@taskapp/tunnel-synth'
 *
 * const backend = synthTunnel({ backendUrl: 'http://127.0.0.1:8700', apiKey: 'relay-key' })
 * await using tunnel = await backend.open({ localUrl: 'http://127.0.0.1:8114', host: '127.0.0.1', port: 8114 })
 * await fetch(`${tunnel.url}/health`, { headers: tunnel.headers })
 * ```
 */
export function synthTunnel(options: SynthTunnelOptions = {}): SynthTunnelBackend {
  const env = options.env ?? process.env
  checkLimitOptions(options)
  const backendUrl = normalizeBackendUrl(
    options.backendUrl ?? env.SYNTH_BACKEND_URL ?? 'https://api.usesynth.ai',
  )
  checkSignalOption(options.signal)
  const envTimeout = Number(env.SYNTH_TUNNEL_TIMEOUT_SEC)
  const ctx: BackendContext = {
    options,
    env,
    backendUrl,
    logger: options.logger ?? silentLogger,
    leaseTimeoutMs: options.leaseTimeoutMs ?? (envTimeout > 0 ? envTimeout * 1000 : 30_000),
  }
  return {
    name: 'synthtunnel',
    open(target, openOptions = {}) {
      return openTunnel(ctx, target, openOptions)
    },
  }
}
