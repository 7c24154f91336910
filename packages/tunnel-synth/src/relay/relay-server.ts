/** The relay's HTTP server: routing, the agent upgrade, listening, pruning and shutdown. */
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer } from 'ws'
import { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
import type { RelayClusterHandle } from './cluster/cluster'
import { HOP_PREFIX } from './cluster/hop-auth'
import { prepareCluster } from './cluster/start'
import type { PreparedCluster } from './cluster/start'
import { AGENT_PATH, CloseCode, LEASES_PATH } from '../protocol/frames'
import { debugEnabled, redact, silentLogger } from '../types'
import type { Logger } from '../types'
import { createRelayAdmin } from './admin/admin-router'
import type { RelayAdmin } from './admin/admin-router'
import { acceptAgent } from './agent-session'
import type { RelayRejections } from './inflight-shares'
import { LeaseApi, bearer, dropLease, hash, token } from './lease-api'
import { createMemoryLeaseStore } from './lease-store'
import type { LeaseStore } from './lease-store'
import { sendJson, sendProblem } from './problem'
import { handlePublicRequest } from './public-route'
import { RelayContext } from './relay-context'
import { resolveRelayOptions } from './relay-options'
import type { RelayServerOptions, RelaySettings } from './relay-options'

export type { RelayServerOptions } from './relay-options'
export type { RelayRejections } from './inflight-shares'

/** Relay counters (for health, tests and benchmarks). */
export interface RelayStats {
  agents: number
  inflight: number
  /** Bytes held right now for bodies in transit. */
  memoryInUse: number
  /** Highest `memoryInUse` seen at request admission and body frames. */
  peakMemoryInUse: number
  /** Requests refused (429) or cut (408) since the relay started, by the limit that applied. */
  rejected: RelayRejections
}

/** A running relay. */
export interface RelayServer extends AsyncDisposable {
  /** Base URL, e.g. `http://127.0.0.1:PORT`: pass it to the agent as `backendUrl`. */
  readonly url: string
  readonly port: number
  readonly host: string
  /** The public origin leases are issued for. */
  readonly publicBaseUrl: string
  /** The first accepted API key (the generated one when none was given). Secret. */
  readonly apiKey: string
  /** Base URL of the admin port (`/metrics`, `/livez`, `/readyz`, `/admin`) when `adminPort` is set. */
  readonly adminUrl: string | undefined
  stats(): RelayStats
  /** This node's cluster counters and readiness (`cluster` option), else `undefined`. */
  readonly cluster: RelayClusterHandle | undefined
  close(): Promise<void>
}

/** Log fields of a caught error: its stable `code` when it has one, and its message. */
function errorFields(err: unknown): { code: unknown; err: string } {
  const e = err as { code?: unknown; message?: unknown } | undefined
  return { code: e?.code, err: String(e?.message ?? err) }
}

function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  if (socket.destroyed) return
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
}

/** The agent endpoint: a live lease's agent token upgrades to a WebSocket session. */
async function onUpgrade(
  ctx: RelayContext,
  wss: WebSocketServer,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  socket.on('error', () => {})
  const path = (req.url ?? '/').split('?')[0]
  if (path !== AGENT_PATH) return rejectUpgrade(socket, 404, 'Not Found')
  if (ctx.closing) return rejectUpgrade(socket, 503, 'Service Unavailable')
  const agentToken = bearer(req.headers.authorization)
  const lease = agentToken ? await ctx.store.findByAgentTokenHash(hash(agentToken)) : undefined
  if (!lease || lease.expiresAt <= Date.now()) return rejectUpgrade(socket, 401, 'Unauthorized')
  if (ctx.closing || socket.destroyed) return rejectUpgrade(socket, 503, 'Service Unavailable')
  wss.handleUpgrade(req, socket, head, (ws) => acceptAgent(ctx, ws, lease))
}

/** The one DEBUG line of a request, once it is over (rid and bytes when it was tunneled). */
function logWhenClosed(ctx: RelayContext, req: IncomingMessage, res: ServerResponse, path: string): void {
  const started = performance.now()
  res.on('close', () => {
    const pr = ctx.tunneled.get(res)
    ctx.logger.debug(
      {
        method: req.method,
        path: path.replace(/^\/s\/[^/]+/, (m) => `/s/${redact(m.slice(3))}`),
        status: pr?.status ?? res.statusCode,
        ms: Math.round((performance.now() - started) * 10) / 10,
        ...(pr && { rid: pr.rid, bytesIn: pr.bytesIn, bytesOut: pr.bytesOut }),
      },
      'relay request',
    )
  })
}

/** Route one HTTP request: public traffic, health, the lease API. */
function route(ctx: RelayContext, leases: LeaseApi, req: IncomingMessage, res: ServerResponse): void {
  let url = req.url ?? '/'
  let path = url.split('?')[0] ?? '/'
  if (ctx.debug) logWhenClosed(ctx, req, res, path)
  const fail = (err: unknown) => {
    if ((err as { code?: unknown }).code === SynthTunnelErrorCode.RelayRedis) {
      ctx.logger.warn(errorFields(err), 'relay: Redis unavailable')
      const detail = 'The relay cannot reach its Redis store right now; retry shortly.'
      return sendProblem(res, 503, 'TUNNEL_CLUSTER_UNAVAILABLE', detail, { 'retry-after': '1' })
    }
    ctx.logger.error(errorFields(err), 'relay: request handler failed')
    sendProblem(res, 500, 'TUNNEL_INTERNAL_ERROR', 'The relay failed to handle the request.')
  }
  try {
    let viaPeer = false
    if (ctx.cluster && path.startsWith(`${HOP_PREFIX}/s/`)) {
      if (!ctx.cluster.acceptHop(req, res)) return
      viaPeer = true
      url = url.slice(HOP_PREFIX.length)
      path = path.slice(HOP_PREFIX.length)
    }
    if (path.startsWith('/s/')) {
      const slash = url.indexOf('/', 3)
      const q = url.indexOf('?', 3)
      const end = slash === -1 ? (q === -1 ? url.length : q) : q !== -1 && q < slash ? q : slash
      const rest = url.slice(end)
      const forwarded = rest.startsWith('?') ? `/${rest}` : rest || '/'
      handlePublicRequest(ctx, req, res, url.slice(3, end), forwarded, viaPeer).catch(fail)
      return
    }
    if ((path === '/health' || path === '/healthz') && (req.method === 'GET' || req.method === 'HEAD')) {
      const closing = ctx.closing
      const body = { status: closing ? 'closing' : 'ok', agents: ctx.sessions.size, inflight: ctx.inflight }
      return sendJson(res, closing ? 503 : 200, body)
    }
    if (path === LEASES_PATH && req.method === 'POST') return void leases.create(req, res).catch(fail)
    if (path.startsWith(`${LEASES_PATH}/`) && req.method === 'DELETE') {
      // still percent-encoded: the lease API checks the key before it decodes
      return void leases.delete(req, res, path.slice(LEASES_PATH.length + 1)).catch(fail)
    }
    sendProblem(res, 404, 'TUNNEL_NOT_FOUND', `Nothing at ${req.method} ${path}.`)
  } catch (err) {
    fail(err)
  }
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new SynthTunnelError(
          SynthTunnelErrorCode.RelayListenFailed,
          `The relay could not listen on ${host}:${port} (${err.code ?? err.message}). Pick another port or stop what holds it.`,
          { cause: err },
        ),
      )
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  const address = server.address()
  return typeof address === 'object' && address ? address.port : port
}

/** Every 5 s at most, forget expired leases and drop their agents (close code 4001). */
function startPruning(ctx: RelayContext): NodeJS.Timeout {
  const timer = setInterval(
    () => {
      ctx.observer?.prune(Date.now()) // the admin's per-tunnel counters, even if nobody opens the page
      void (async () => {
        for (const lease of await ctx.store.deleteExpired(Date.now()))
          dropLease(ctx, lease, CloseCode.LeaseExpired, 'lease expired')
      })().catch((err: unknown) => {
        // a lease store that cannot be written (full disk, permissions) must not go unnoticed
        ctx.logger.warn(errorFields(err), 'relay: pruning expired leases failed')
      })
    },
    Math.min(5_000, ctx.settings.leaseTtlSeconds * 500),
  )
  timer.unref()
  return timer
}

/** Close every agent socket (1001), waiting at most 1 s for each before terminating it. */
async function closeAgents(ctx: RelayContext, wss: WebSocketServer): Promise<void> {
  for (const session of [...ctx.sessions.values()]) {
    session.end(502, 'TUNNEL_RELAY_SHUTTING_DOWN', 'The relay is shutting down.')
    session.ws.close(1001, 'relay shutting down')
  }
  await Promise.all(
    [...wss.clients].map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve()
          const t = setTimeout(() => ws.terminate(), 1_000)
          ws.once('close', () => {
            clearTimeout(t)
            resolve()
          })
          if (ws.readyState === WebSocket.OPEN) ws.close(1001, 'relay shutting down')
        }),
    ),
  )
}

/** `http://host:port` of a relay bound to `host` (a wildcard host as loopback). */
function selfUrlOf(host: string, port: number): string {
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host
  return `http://${urlHost}:${port}`
}

interface RelayParts {
  ctx: RelayContext
  wss: WebSocketServer
  admin: RelayAdmin
  server: Server
  /** Filled in once the relay listens; the lease API reads them per request. */
  urls: { publicBaseUrl: string; agentConnectUrl: string }
}

/** The relay's pieces, before anything listens; throws on bad admin options. */
function relayParts(
  options: RelayServerOptions,
  settings: RelaySettings,
  apiKeys: string[],
  logger: Logger,
  clusterStore: LeaseStore | undefined,
): RelayParts {
  const ctx = new RelayContext(
    settings,
    options.leaseStore ?? clusterStore ?? createMemoryLeaseStore(),
    logger,
    debugEnabled(logger),
  )
  const urls = { publicBaseUrl: '', agentConnectUrl: '' }
  const leases = new LeaseApi(ctx, apiKeys, () => urls)
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 })
  const admin = createRelayAdmin(ctx, options, apiKeys) // /metrics, /livez, /readyz, /admin; checks its options
  const server = createServer(
    { keepAliveTimeout: 5_000 },
    admin.wrap((req, res) => route(ctx, leases, req, res)),
  )
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    onUpgrade(ctx, wss, req, socket, head).catch(() => rejectUpgrade(socket, 500, 'Internal Server Error'))
  })
  server.on('clientError', (_err, socket) => {
    if (!socket.destroyed) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
  })
  return { ctx, wss, admin, server, urls }
}

/** Listen on the main port, start the cluster (it advertises that port), then the admin port. */
async function listenAll(
  { ctx, server, admin }: RelayParts,
  settings: RelaySettings,
  prepared: PreparedCluster | undefined,
): Promise<{ boundPort: number; adminUrl: string | undefined }> {
  let boundPort: number
  try {
    boundPort = await listen(server, settings.port, settings.host)
    if (prepared) ctx.cluster = await prepared.start(ctx, selfUrlOf(settings.host, boundPort))
  } catch (err) {
    server.close()
    prepared?.abandon()
    throw err
  }
  const adminUrl = await admin.listen().catch(async (err: unknown) => {
    await ctx.cluster?.close()
    await new Promise((resolve) => server.close(resolve))
    throw err
  })
  return { boundPort, adminUrl }
}

/**
 * Start a self-hostable SynthTunnel relay: the lease REST API, the agent WebSocket endpoint and
 * public traffic on `/s/<route_token>/...`, speaking the reference protocol.
 *
 * @example
 * ```ts
 * import { createRelayServer } from '@taskapp/tunnel-synth/relay'
 * import { synthTunnel } from '@taskapp/tunnel-synth'
 *
 * await using relay = await createRelayServer({ port: 8700, apiKeys: ['team-key'] })
 * const backend = synthTunnel({ backendUrl: relay.url, apiKey: 'team-key' })
 * ```
 */
export async function createRelayServer(options: RelayServerOptions = {}): Promise<RelayServer> {
  const settings = resolveRelayOptions(options)
  const { host } = settings
  const apiKeys = options.apiKeys?.length ? [...options.apiKeys] : [token('rk_', 24)]
  const logger = options.logger ?? silentLogger
  const prepared = options.cluster ? await prepareCluster(options.cluster) : undefined
  let parts: RelayParts
  try {
    parts = relayParts(options, settings, apiKeys, logger, prepared?.store)
  } catch (err) {
    prepared?.abandon() // e.g. bad admin options: the cluster's Redis connection must not stay open
    throw err
  }
  const { ctx, server, wss, admin, urls } = parts
  const { boundPort, adminUrl } = await listenAll(parts, settings, prepared)
  const selfUrl = selfUrlOf(host, boundPort)
  const publicBaseUrl = (options.publicBaseUrl ?? selfUrl).replace(/\/+$/, '')
  urls.publicBaseUrl = publicBaseUrl
  urls.agentConnectUrl = `${publicBaseUrl.replace(/^http/, 'ws')}${AGENT_PATH}`
  const pruneTimer = startPruning(ctx)

  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      ctx.closing = true
      clearInterval(pruneTimer)
      const closedServer = new Promise<void>((resolve) => server.close(() => resolve()))
      await closeAgents(ctx, wss)
      server.closeIdleConnections()
      const force = setTimeout(() => server.closeAllConnections(), 1_000)
      await closedServer
      clearTimeout(force)
      wss.close()
      await admin.close()
      await ctx.cluster?.close()
      logger.info({ port: boundPort }, 'relay: closed')
    })())

  const relay: RelayServer = {
    url: selfUrl,
    port: boundPort,
    host,
    publicBaseUrl,
    apiKey: apiKeys[0]!,
    adminUrl,
    stats: () => ({
      agents: ctx.sessions.size,
      inflight: ctx.inflight,
      memoryInUse: ctx.memoryInUse(),
      peakMemoryInUse: ctx.peakMemory,
      rejected: { ...ctx.shares.rejected },
    }),
    cluster: ctx.cluster,
    close,
    [Symbol.asyncDispose]: close,
  }
  logger.info({ url: selfUrl, publicBaseUrl, adminUrl, apiKey: redact(relay.apiKey) }, 'relay: listening')
  return relay
}
