import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { SynthTunnelAgent } from './agent/agent'
import type { SynthTunnelStats } from './agent/agent'
import { SynthTunnelErrorCode } from './errors'
import type { SynthTunnelError } from './errors'
import { createLease, deleteLease } from './lease-client'
import type { Lease } from './lease-client'
import { AGENT_PATH, WORKER_TOKEN_HEADER } from './protocol/frames'
import { redact, silentLogger } from './types'
import type { Logger, OpenTunnel, TunnelBackend, TunnelTarget } from './types'
import {
  checkLimitOptions,
  checkSignalOption,
  localApiKeysFromEnv,
  resolveBackendUrl,
  resolveRelayUrls,
  requireApiKey,
} from './synth-tunnel-options'
import type { SynthTunnelOptions } from './synth-tunnel-options'

export { localApiKeysFromEnv } from './synth-tunnel-options'
export type { SynthTunnelOptions } from './synth-tunnel-options'

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

/** What `open()` needs from {@link synthTunnel}: its options and the defaults resolved once. */
interface BackendContext {
  readonly options: SynthTunnelOptions
  readonly env: Readonly<Record<string, string | undefined>>
  readonly backendUrl: string
  /** Other relay nodes (`relayUrls`), tried after `backendUrl`. */
  readonly relayUrls: readonly string[]
  readonly logger: Logger
  readonly leaseTimeoutMs: number
}

/** Where the agent forwards requests: the local host (wildcards mapped to loopback), origin and port. */
interface LocalEndpoint {
  readonly host: string
  readonly origin: string
  readonly port: number
  /** The server itself, when it runs in this process (the in-process path). */
  readonly server: TunnelTarget['server']
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

/** The local endpoint of `target`: wildcard or missing hosts become `127.0.0.1`; the origin falls back to host and port. */
function localEndpoint(target: TunnelTarget): LocalEndpoint {
  const host = target.host === '0.0.0.0' || target.host === '::' || !target.host ? '127.0.0.1' : target.host
  let origin: string
  try {
    origin = new URL(target.localUrl).origin
  } catch {
    origin = `http://${host.includes(':') ? `[${host}]` : host}:${target.port}`
  }
  return { host, origin, port: target.port, server: target.server }
}

/** `fn(url)` for `backendUrl`, then each relay node while the one before could not be reached. */
async function onFirstReachable<T>(ctx: BackendContext, fn: (backendUrl: string) => Promise<T>): Promise<T> {
  const urls = [ctx.backendUrl, ...ctx.relayUrls.filter((u) => u !== ctx.backendUrl)]
  for (let i = 0; ; i += 1) {
    try {
      return await fn(urls[i]!)
    } catch (err) {
      const unreachable = (err as { code?: unknown }).code === SynthTunnelErrorCode.BackendUnreachable
      if (!unreachable || i === urls.length - 1) throw err
    }
  }
}

/** Deletes the lease (through the first reachable relay node), logging (not throwing) a failure. */
async function removeLeaseQuietly(
  ctx: BackendContext,
  input: Omit<Parameters<typeof deleteLease>[0], 'backendUrl'>,
): Promise<void> {
  const { logger } = ctx
  try {
    await onFirstReachable(ctx, (backendUrl) => deleteLease({ ...input, backendUrl }))
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
  const agentUrls = ctx.relayUrls.map((u) => `${u.replace(/^http/, 'ws')}${AGENT_PATH}`)
  return new SynthTunnelAgent({
    connectUrl: lease.agentConnectUrl,
    connectUrls: [...new Set([lease.agentConnectUrl, ...agentUrls])],
    agentToken: lease.agentToken,
    leaseId: lease.leaseId,
    agentId: clientInstanceId,
    localOrigin: local.origin,
    localTarget: { host: local.host, port: local.port },
    localServer: options.inProcess === false ? undefined : local.server,
    inProcessMode: options.inProcess === 'connection' ? 'connection' : 'request',
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
  const lease = await onFirstReachable(ctx, (backendUrl) =>
    createLease({
      backendUrl,
      apiKey,
      clientInstanceId,
      localTarget: { host: local.host, port: local.port },
      requestedTtlSeconds: options.requestedTtlSeconds ?? 3600,
      timeoutMs: ctx.leaseTimeoutMs,
      ...(signal ? { signal } : {}),
    }),
  )
  logger.info(
    { leaseId: lease.leaseId, url: lease.publicUrl, workerToken: redact(lease.workerToken) },
    'synthtunnel: lease created',
  )
  const closeTimeoutMs = options.closeTimeoutMs ?? 5_000
  const removeLease = () =>
    removeLeaseQuietly(ctx, {
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
  const backendUrl = resolveBackendUrl(options.backendUrl, env)
  checkSignalOption(options.signal)
  const envTimeout = Number(env.SYNTH_TUNNEL_TIMEOUT_SEC)
  const ctx: BackendContext = {
    options,
    env,
    backendUrl,
    relayUrls: resolveRelayUrls(options.relayUrls),
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
