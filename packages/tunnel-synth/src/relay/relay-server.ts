import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer } from 'ws'
import { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
import {
  AGENT_PATH,
  CloseCode,
  DEFAULT_DEADLINE_MS,
  DEFAULT_MAX_INFLIGHT,
  DEFAULT_MAX_RESPONSE_BYTES,
  HOP_BY_HOP_HEADERS,
  LEASES_PATH,
  MAX_BODY_CHUNK_BYTES,
  BINARY_FRAMES_CAPABILITY,
  BinaryKind,
  chunksOf,
  corkingSender,
  decodeBinaryBody,
  encodeBinaryBody,
  rawToBuffer,
  decodeBase64,
  parseAgentFrame,
  parseAttachFrame,
  toBase64,
} from '../protocol'
import type { HeaderPairs } from '../protocol'
import { debugEnabled, redact, silentLogger } from '../types'
import type { Logger } from '../types'
import { createMemoryLeaseStore } from './lease-store'
import type { LeaseStore, RelayLease } from './lease-store'

/** Options of {@link createRelayServer}. */
export interface RelayServerOptions {
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
  /** Requests in flight across all agents; more get 429. @default 128 */
  maxInflight?: number
  /** Bytes the relay may hold for bodies in transit (WebSocket send buffers + caller write buffers). @default 64 MiB */
  memoryBudgetBytes?: number
  /** Largest request body; more gets 413. @default 200_000_000 */
  maxRequestBytes?: number
  /** Largest response body; more aborts the response. @default 200_000_000 */
  maxResponseBytes?: number
  /** Deadline of a public request (sent to the agent as `deadline_ms`); past it, 504. @default 600_000 */
  defaultDeadlineMs?: number
  /** Longest lease lifetime granted (requests ask via `requested_ttl_seconds`). @default 3600 */
  leaseTtlSeconds?: number
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
  /** pino-compatible logger; one DEBUG line per request. @default silent */
  logger?: Logger
}

/** Relay counters (for health, tests and benchmarks). */
export interface RelayStats {
  agents: number
  inflight: number
  /** Bytes held right now for bodies in transit. */
  memoryInUse: number
  /** Highest `memoryInUse` seen at request admission and body frames. */
  peakMemoryInUse: number
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
  stats(): RelayStats
  close(): Promise<void>
}

interface AgentSession {
  ws: WebSocket
  /** Body chunks as binary frames (negotiated). */
  binary: boolean
  send: ReturnType<typeof corkingSender>
  lease: RelayLease
  agentId: string
  maxInflight: number
  inflight: Map<string, PublicRequest>
  /**
   * In-flight requests whose response has begun (headers or body written). Only these can hold
   * bytes in a caller's write buffer, so memoryInUse() sums over them, not over all in flight.
   */
  writing: Set<PublicRequest>
  pausedBy: Set<string>
  alive: boolean
  pingTimer: NodeJS.Timeout
}

interface PublicRequest {
  rid: string
  req: IncomingMessage
  res: ServerResponse
  session: AgentSession
  done: boolean
  headersSent: boolean
  bytesIn: number
  bytesOut: number
  timer: NodeJS.Timeout | undefined
  stallTimer: NodeJS.Timeout | undefined
  /** Status the relay ended the request with when it is not the response's (e.g. 499: caller left). */
  status: number | undefined
}

const PROBLEM_TITLES: Record<string, string> = {
  TUNNEL_AUTH_REQUIRED: 'Worker token required',
  TUNNEL_NOT_FOUND: 'No such tunnel',
  TUNNEL_AGENT_OFFLINE: 'No agent attached',
  TUNNEL_CAPACITY_EXCEEDED: 'Tunnel at capacity',
  TUNNEL_TIMEOUT: 'Tunnel deadline exceeded',
  TUNNEL_PAYLOAD_TOO_LARGE: 'Payload too large',
  TUNNEL_AGENT_DISCONNECTED: 'Agent disconnected',
  TUNNEL_UPSTREAM_ERROR: 'Local server error',
  TUNNEL_BAD_AGENT_RESPONSE: 'Bad agent response',
  TUNNEL_RELAY_SHUTTING_DOWN: 'Relay shutting down',
}

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex')
const token = (prefix: string, bytes = 24) => `${prefix}${randomBytes(bytes).toString('base64url')}`

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex')
  const y = Buffer.from(b, 'hex')
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Log fields of a caught error: its stable `code` when it has one, and its message. */
function errorFields(err: unknown): { code: unknown; err: string } {
  const e = err as { code?: unknown; message?: unknown } | undefined
  return { code: e?.code, err: String(e?.message ?? err) }
}

function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
  return m?.[1]
}

function positive(name: string, value: number | undefined, fallback: number, allowZero = false): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.RelayInvalidOptions,
      `createRelayServer: ${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${String(value)}.`,
    )
  }
  return value
}

function sendProblem(
  res: ServerResponse,
  status: number,
  code: string,
  detail: string,
  extra: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return
  }
  const body = JSON.stringify({
    type: 'about:blank',
    title: PROBLEM_TITLES[code] ?? code,
    status,
    code,
    detail,
  })
  res.writeHead(status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    ...extra,
  })
  res.end(body)
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
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
  const port = positive('port', options.port, 0, true)
  if (!Number.isInteger(port) || port > 65535) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.RelayInvalidOptions,
      `createRelayServer: port must be 0..65535, got ${port}.`,
    )
  }
  const host = options.host ?? '127.0.0.1'
  const maxInflight = positive('maxInflight', options.maxInflight, DEFAULT_MAX_INFLIGHT)
  const memoryBudgetBytes = positive('memoryBudgetBytes', options.memoryBudgetBytes, 64 * 1024 * 1024)
  const maxRequestBytes = positive('maxRequestBytes', options.maxRequestBytes, DEFAULT_MAX_RESPONSE_BYTES)
  const maxResponseBytes = positive('maxResponseBytes', options.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES)
  const defaultDeadlineMs = positive('defaultDeadlineMs', options.defaultDeadlineMs, DEFAULT_DEADLINE_MS)
  const leaseTtlSeconds = positive('leaseTtlSeconds', options.leaseTtlSeconds, 3600)
  const attachTimeoutMs = positive('attachTimeoutMs', options.attachTimeoutMs, 10_000)
  const pingIntervalMs = positive('pingIntervalMs', options.pingIntervalMs, 20_000)
  const binaryFrames = options.binaryFrames ?? true
  const stallTimeoutMs = positive('stallTimeoutMs', options.stallTimeoutMs, 10_000)
  if (
    options.apiKeys !== undefined &&
    (!Array.isArray(options.apiKeys) || options.apiKeys.some((k) => typeof k !== 'string' || !k))
  ) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.RelayInvalidOptions,
      'createRelayServer: apiKeys must be non-empty strings.',
    )
  }
  if (options.publicBaseUrl !== undefined) {
    try {
      const u = new URL(options.publicBaseUrl)
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError('not http(s)')
    } catch (err) {
      throw new SynthTunnelError(
        SynthTunnelErrorCode.RelayInvalidOptions,
        `createRelayServer: publicBaseUrl must be an http(s) URL, got "${options.publicBaseUrl}".`,
        { cause: err },
      )
    }
  }
  const givenKeys: readonly string[] = options.apiKeys ?? []
  const apiKeys: string[] = givenKeys.length ? [...givenKeys] : [token('rk_', 24)]
  const apiKeyHashes = apiKeys.map(hash)
  const store = options.leaseStore ?? createMemoryLeaseStore()
  const logger = options.logger ?? silentLogger
  const debug = debugEnabled(logger)
  /** Bytes one caller may have queued before the agent's WebSocket is paused for it. */
  const perRequestAllowance = Math.max(
    MAX_BODY_CHUNK_BYTES,
    Math.floor(memoryBudgetBytes / (2 * maxInflight)),
  )
  /** Bytes queued on one agent WebSocket before callers' uploads are paused. */
  const wsHighWater = Math.max(
    MAX_BODY_CHUNK_BYTES * 2,
    Math.min(1024 * 1024, Math.floor(memoryBudgetBytes / 4)),
  )

  const sessions = new Map<string, AgentSession>()
  /** Decoded worker-token hashes per lease object (a shared store handing out copies just decodes again). */
  const workerHashBytes = new WeakMap<RelayLease, Buffer>()
  /** SHA-256 of the presented token against the lease's, in constant time, without hex round trips. */
  const workerTokenMatches = (lease: RelayLease, presented: string): boolean => {
    let expected = workerHashBytes.get(lease)
    if (expected === undefined) {
      expected = Buffer.from(lease.workerTokenHash, 'hex')
      workerHashBytes.set(lease, expected)
    }
    const actual = createHash('sha256').update(presented).digest()
    return actual.length === expected.length && timingSafeEqual(actual, expected)
  }
  /** Tunneled requests by response, only while DEBUG is on: their one log line adds rid and bytes. */
  const tunneled = new WeakMap<ServerResponse, PublicRequest>()
  let inflight = 0
  let peakMemory = 0
  let ridSeq = 0
  let closing: Promise<void> | undefined
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 })

  const memoryInUse = (): number => {
    let total = 0
    for (const s of sessions.values()) {
      total += s.ws.bufferedAmount
      for (const pr of s.writing) total += pr.res.writableLength
    }
    if (total > peakMemory) peakMemory = total
    return total
  }

  /** Send a frame; `cb` (only where a flush notice is needed) runs once it is written. */
  const sendData = (session: AgentSession, data: string | Buffer, cb?: () => void): void => {
    if (session.ws.readyState !== WebSocket.OPEN) return cb?.()
    session.send(data, cb)
  }
  const sendFrame = (session: AgentSession, frame: object): void => sendData(session, JSON.stringify(frame))

  /** Responses corked at RESP_HEADERS this turn: flushed together in one setImmediate. */
  let corked: PublicRequest[] = []
  const flushCorked = () => {
    const list = corked
    corked = []
    for (const pr of list) {
      const res = pr.res
      // Headers go with the body frames of their turn; flushed alone otherwise.
      if (!pr.done && pr.bytesOut === 0 && !res.destroyed) res.flushHeaders()
      res.uncork()
    }
  }

  const complete = (pr: PublicRequest, status?: number): void => {
    if (pr.done) return
    pr.done = true
    clearTimeout(pr.timer)
    clearTimeout(pr.stallTimer)
    const s = pr.session
    if (s.inflight.delete(pr.rid)) inflight -= 1
    s.writing.delete(pr)
    if (s.pausedBy.delete(pr.rid) && s.pausedBy.size === 0 && s.ws.isPaused) s.ws.resume()
    if (pr.req.isPaused()) pr.req.resume() // discard the rest of an unread body
    if (status !== undefined) pr.status = status
  }

  /** End a public request with an error (problem+json, or a reset when the response has begun). */
  const failRequest = (
    pr: PublicRequest,
    status: number,
    code: string,
    detail: string,
    cancel: boolean,
    extra: Record<string, string> = {},
  ) => {
    if (pr.done) return
    if (cancel) sendFrame(pr.session, { type: 'CANCEL', rid: pr.rid })
    complete(pr, status)
    sendProblem(pr.res, status, code, detail, extra)
  }

  const endSession = (session: AgentSession, status: number, code: string, detail: string) => {
    clearInterval(session.pingTimer)
    if (sessions.get(session.lease.leaseId) === session) sessions.delete(session.lease.leaseId)
    for (const pr of [...session.inflight.values()])
      failRequest(pr, status, code, detail, false, { connection: 'close' })
  }

  const onRespBody = (session: AgentSession, pr: PublicRequest, chunk: Buffer): void => {
    if (!pr.headersSent) {
      failRequest(
        pr,
        502,
        'TUNNEL_BAD_AGENT_RESPONSE',
        'The agent broke the protocol: body before RESP_HEADERS.',
        true,
      )
      return
    }
    pr.bytesOut += chunk.length
    if (pr.bytesOut > maxResponseBytes) {
      failRequest(
        pr,
        502,
        'TUNNEL_PAYLOAD_TOO_LARGE',
        `The response exceeds ${maxResponseBytes} bytes.`,
        true,
      )
      return
    }
    try {
      pr.res.write(chunk)
    } catch (err) {
      failRequest(
        pr,
        502,
        'TUNNEL_BAD_AGENT_RESPONSE',
        `Unwritable response body (${(err as Error).message}).`,
        true,
      )
      return
    }
    if (pr.res.writableLength > perRequestAllowance || memoryInUse() > memoryBudgetBytes) {
      // The caller is behind: stop reading from the agent rather than buffering for it.
      if (!session.ws.isPaused) session.ws.pause()
      if (session.pausedBy.has(pr.rid)) return
      session.pausedBy.add(pr.rid)
      pr.stallTimer = setTimeout(
        () =>
          failRequest(pr, 504, 'TUNNEL_TIMEOUT', `The caller did not read for ${stallTimeoutMs} ms.`, true),
        stallTimeoutMs,
      )
      pr.stallTimer.unref()
      pr.res.once('drain', () => {
        clearTimeout(pr.stallTimer)
        if (session.pausedBy.delete(pr.rid) && session.pausedBy.size === 0 && session.ws.isPaused)
          session.ws.resume()
      })
    }
  }

  const onAgentFrame = (session: AgentSession, text: string) => {
    const frame = parseAgentFrame(text)
    if (!frame) {
      logger.debug({ leaseId: session.lease.leaseId }, 'relay: ignoring a malformed agent frame')
      return
    }
    const pr = session.inflight.get(frame.rid)
    if (!pr) return
    const bad = (why: string) =>
      failRequest(pr, 502, 'TUNNEL_BAD_AGENT_RESPONSE', `The agent broke the protocol: ${why}.`, true)
    switch (frame.type) {
      case 'RESP_HEADERS': {
        if (pr.headersSent) return bad('RESP_HEADERS twice')
        const flat: string[] = []
        for (const [name, value] of frame.headers) {
          if (!HOP_BY_HOP_HEADERS.has(name.toLowerCase())) flat.push(name, value)
        }
        try {
          // A body that ends short of (or runs past) its Content-Length must not pass for a whole
          // response: Node then throws instead, and the caller sees a reset at once rather than
          // waiting for bytes that never come until the keep-alive timeout.
          pr.res.strictContentLength = true
          pr.res.writeHead(frame.status, flat)
          // Send the headers together with the body frames of this turn; flush them alone otherwise.
          pr.res.cork()
          if (corked.push(pr) === 1) setImmediate(flushCorked)
          session.writing.add(pr)
        } catch (err) {
          pr.res.removeHeader('content-length')
          return bad(`invalid response headers (${(err as Error).message})`)
        }
        pr.headersSent = true
        return
      }
      case 'RESP_BODY': {
        if (!pr.headersSent) return bad('RESP_BODY before RESP_HEADERS')
        const chunk = decodeBase64(frame.chunk_b64)
        if (!chunk) return bad('RESP_BODY with invalid base64')
        return onRespBody(session, pr, chunk)
      }
      case 'RESP_END': {
        if (!pr.headersSent) return bad('RESP_END before RESP_HEADERS')
        complete(pr)
        try {
          pr.res.end()
        } catch {
          pr.status = 502 // the body did not match its Content-Length
          pr.res.destroy()
        }
        return
      }
      case 'RESP_ERROR': {
        const capacity = frame.code === 'AGENT_CAPACITY_EXCEEDED'
        const status = capacity ? 429 : 502
        const code = capacity ? 'TUNNEL_CAPACITY_EXCEEDED' : 'TUNNEL_UPSTREAM_ERROR'
        failRequest(
          pr,
          status,
          code,
          `The agent answered ${frame.code}: ${frame.message}`,
          false,
          capacity ? { 'retry-after': '1' } : {},
        )
        return
      }
    }
  }

  const onAgentSocket = (ws: WebSocket, lease: RelayLease) => {
    ws.on('error', () => {})
    const attachTimer = setTimeout(
      () => ws.close(CloseCode.AttachTimeout, 'ATTACH expected'),
      attachTimeoutMs,
    )
    attachTimer.unref()
    let session: AgentSession | undefined
    ws.on('message', (data, isBinary) => {
      if (session) session.alive = true // any traffic proves the agent is alive
      if (isBinary) {
        if (!session?.binary) return
        try {
          const frame = decodeBinaryBody(rawToBuffer(data))
          const pr = frame?.kind === BinaryKind.RespBody ? session.inflight.get(frame.rid) : undefined
          if (frame && pr) onRespBody(session, pr, frame.payload)
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'relay: failed to handle an agent frame')
        }
        return
      }
      const text = rawToBuffer(data).toString('utf8')
      if (session) {
        try {
          onAgentFrame(session, text)
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'relay: failed to handle an agent frame')
        }
        return
      }
      clearTimeout(attachTimer)
      const attach = parseAttachFrame(text)
      if (!attach || (attach.leases.length > 0 && !attach.leases.some((l) => l.lease_id === lease.leaseId))) {
        ws.close(CloseCode.BadAttach, 'expected ATTACH for this lease')
        return
      }
      const previous = sessions.get(lease.leaseId)
      if (previous) {
        endSession(
          previous,
          502,
          'TUNNEL_AGENT_DISCONNECTED',
          'A newer agent connection replaced the one serving this request.',
        )
        previous.ws.close(CloseCode.Replaced, 'replaced by a newer agent connection')
      }
      const advertised = attach.capabilities.max_inflight
      const binary = binaryFrames && attach.capabilities[BINARY_FRAMES_CAPABILITY] === true
      const s: AgentSession = {
        ws,
        binary,
        send: corkingSender(ws),
        lease,
        agentId: attach.agent_id,
        maxInflight:
          typeof advertised === 'number' && advertised > 0 ? Math.min(maxInflight, advertised) : maxInflight,
        inflight: new Map(),
        writing: new Set(),
        pausedBy: new Set(),
        alive: true,
        pingTimer: setInterval(() => {
          // while we do not read the socket (backpressure) a pong cannot be seen; stalls are bounded apart
          if (!s.alive && !ws.isPaused) {
            logger.warn({ leaseId: lease.leaseId }, 'relay: agent did not answer a ping; dropping it')
            ws.terminate()
            return
          }
          s.alive = false
          ws.ping()
        }, pingIntervalMs),
      }
      s.pingTimer.unref()
      session = s
      sessions.set(lease.leaseId, s)
      ws.on('pong', () => (s.alive = true))
      ws.send(
        JSON.stringify({
          type: 'ATTACH_ACK',
          agent_id: attach.agent_id,
          lease_ids: [lease.leaseId],
          ...(binary ? { capabilities: { [BINARY_FRAMES_CAPABILITY]: true } } : {}),
        }),
      )
      logger.info({ leaseId: lease.leaseId, agentId: attach.agent_id, binary }, 'relay: agent attached')
    })
    ws.on('close', (code) => {
      clearTimeout(attachTimer)
      if (!session) return
      logger.info({ leaseId: lease.leaseId, code }, 'relay: agent detached')
      endSession(
        session,
        502,
        'TUNNEL_AGENT_DISCONNECTED',
        'The agent disconnected while the request was in flight.',
      )
    })
  }

  const rejectUpgrade = (socket: Duplex, status: number, text: string) => {
    if (socket.destroyed) return
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
  }

  const onUpgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {})
    const path = (req.url ?? '/').split('?')[0]
    if (path !== AGENT_PATH) return rejectUpgrade(socket, 404, 'Not Found')
    if (closing) return rejectUpgrade(socket, 503, 'Service Unavailable')
    const agentToken = bearer(req.headers.authorization)
    const lease = agentToken ? await store.findByAgentTokenHash(hash(agentToken)) : undefined
    if (!lease || lease.expiresAt <= Date.now()) return rejectUpgrade(socket, 401, 'Unauthorized')
    if (closing || socket.destroyed) return rejectUpgrade(socket, 503, 'Service Unavailable')
    wss.handleUpgrade(req, socket, head, (ws) => onAgentSocket(ws, lease))
  }

  const readJson = (req: IncomingMessage, limit: number): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      let size = 0
      req.on('data', (c: Buffer) => {
        size += c.length
        if (size > limit) {
          reject(new RangeError('body too large'))
          req.destroy()
          return
        }
        chunks.push(c)
      })
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8').trim()
        try {
          resolve(text ? (JSON.parse(text) as unknown) : {})
        } catch (err) {
          reject(err)
        }
      })
      req.on('error', reject)
    })

  const apiKeyHashOf = (req: IncomingMessage): string | undefined => {
    const key = bearer(req.headers.authorization)
    if (!key) return undefined
    const h = hash(key)
    return apiKeyHashes.some((k) => sameHash(k, h)) ? h : undefined
  }

  const apiError = (res: ServerResponse, status: number, code: string, message: string) =>
    sendJson(res, status, { error: { code, message } })

  const createLease = async (req: IncomingMessage, res: ServerResponse) => {
    const owner = apiKeyHashOf(req)
    if (!owner) return apiError(res, 401, 'unauthorized', 'Send Authorization: Bearer <relay API key>.')
    let body: Record<string, unknown>
    try {
      const parsed = await readJson(req, 64 * 1024)
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
        throw new TypeError('not an object')
      body = parsed as Record<string, unknown>
    } catch {
      return apiError(res, 400, 'invalid_request', 'The body must be a JSON object (at most 64 KiB).')
    }
    const ttlAsked = body.requested_ttl_seconds
    const ttl =
      typeof ttlAsked === 'number' && ttlAsked > 0 ? Math.min(ttlAsked, leaseTtlSeconds) : leaseTtlSeconds
    const target = body.local_target as { host?: unknown; port?: unknown } | undefined
    const agentToken = token('at_')
    const workerToken = token('wt_')
    const lease: RelayLease = {
      leaseId: `lease_${randomBytes(12).toString('hex')}`,
      routeToken: token('rt_'),
      agentTokenHash: hash(agentToken),
      workerTokenHash: hash(workerToken),
      ownerKeyHash: owner,
      clientInstanceId:
        typeof body.client_instance_id === 'string' ? body.client_instance_id.slice(0, 128) : '',
      localTarget:
        typeof target?.host === 'string' && typeof target.port === 'number'
          ? { host: target.host, port: target.port }
          : undefined,
      createdAt: Date.now(),
      expiresAt: Date.now() + ttl * 1000,
    }
    await store.put(lease)
    logger.info({ leaseId: lease.leaseId, route: redact(lease.routeToken), ttl }, 'relay: lease created')
    sendJson(res, 201, {
      lease_id: lease.leaseId,
      route_token: lease.routeToken,
      public_base_url: `${relay.publicBaseUrl}/s`,
      public_url: `${relay.publicBaseUrl}/s/${lease.routeToken}`,
      agent_connect: { url: agentConnectUrl, agent_token: agentToken },
      worker_token: workerToken,
      expires_at: new Date(lease.expiresAt).toISOString(),
      limits: {
        max_inflight: maxInflight,
        max_request_bytes: maxRequestBytes,
        max_response_bytes: maxResponseBytes,
        max_body_chunk_bytes: MAX_BODY_CHUNK_BYTES,
      },
      heartbeat: {},
    })
  }

  const dropLease = (lease: RelayLease, code: number, why: string) => {
    const session = sessions.get(lease.leaseId)
    if (!session) return
    endSession(session, 502, 'TUNNEL_AGENT_DISCONNECTED', why)
    session.ws.close(code, why)
  }

  const deleteLease = async (req: IncomingMessage, res: ServerResponse, leaseId: string) => {
    const owner = apiKeyHashOf(req)
    if (!owner) return apiError(res, 401, 'unauthorized', 'Send Authorization: Bearer <relay API key>.')
    const lease = await store.get(leaseId)
    if (!lease || !sameHash(lease.ownerKeyHash, owner))
      return apiError(res, 404, 'not_found', 'No such lease.')
    await store.delete(leaseId)
    dropLease(lease, CloseCode.LeaseDeleted, 'lease deleted')
    logger.info({ leaseId }, 'relay: lease deleted')
    res.writeHead(204).end()
  }

  const handlePublic = async (
    req: IncomingMessage,
    res: ServerResponse,
    routeToken: string,
    rest: string,
  ) => {
    const lease = await store.findByRouteToken(routeToken)
    if (!lease || lease.expiresAt <= Date.now()) {
      return sendProblem(
        res,
        404,
        'TUNNEL_NOT_FOUND',
        'No tunnel has this route token (it may have expired).',
      )
    }
    const headerToken = req.headers['x-synthtunnel-worker-token']
    const bearerToken = bearer(req.headers.authorization)
    const workerToken = typeof headerToken === 'string' ? headerToken : bearerToken
    if (!workerToken || !workerTokenMatches(lease, workerToken)) {
      return sendProblem(
        res,
        401,
        'TUNNEL_AUTH_REQUIRED',
        'Send the worker token in x-synthtunnel-worker-token (or Authorization: Bearer).',
        { 'www-authenticate': 'Bearer realm="synthtunnel"' },
      )
    }
    if (closing) return sendProblem(res, 503, 'TUNNEL_RELAY_SHUTTING_DOWN', 'The relay is shutting down.')
    const session = sessions.get(lease.leaseId)
    if (!session || session.ws.readyState !== WebSocket.OPEN) {
      return sendProblem(
        res,
        503,
        'TUNNEL_AGENT_OFFLINE',
        'No agent is attached to this tunnel; retry later.',
        {
          'retry-after': '1',
        },
      )
    }
    if (
      inflight >= maxInflight ||
      session.inflight.size >= session.maxInflight ||
      memoryInUse() >= memoryBudgetBytes
    ) {
      return sendProblem(res, 429, 'TUNNEL_CAPACITY_EXCEEDED', 'The tunnel is at capacity; retry shortly.', {
        'retry-after': '1',
      })
    }
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > maxRequestBytes) {
      res.shouldKeepAlive = false
      return sendProblem(
        res,
        413,
        'TUNNEL_PAYLOAD_TOO_LARGE',
        `The request body exceeds ${maxRequestBytes} bytes.`,
      )
    }
    const rid = `r${(ridSeq += 1)}`
    const pr: PublicRequest = {
      rid,
      req,
      res,
      session,
      done: false,
      headersSent: false,
      bytesIn: 0,
      bytesOut: 0,
      timer: undefined,
      stallTimer: undefined,
      status: undefined,
    }
    if (debug) tunneled.set(res, pr)
    session.inflight.set(rid, pr)
    inflight += 1
    const q = rest.indexOf('?')
    const path = q === -1 ? rest : rest.slice(0, q)
    const headers: HeaderPairs = []
    const raw = req.rawHeaders
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!
      const lower = name.toLowerCase()
      if (HOP_BY_HOP_HEADERS.has(lower) || lower === 'x-synthtunnel-worker-token') continue
      if (lower === 'authorization' && bearerToken === workerToken) continue
      headers.push([name, raw[i + 1]!])
    }
    sendFrame(session, {
      type: 'REQ_HEADERS',
      lease_id: lease.leaseId,
      rid,
      method: req.method ?? 'GET',
      path: path || '/',
      query: q === -1 ? '' : rest.slice(q + 1),
      headers,
      deadline_ms: defaultDeadlineMs,
    })
    pr.timer = setTimeout(
      () =>
        failRequest(pr, 504, 'TUNNEL_TIMEOUT', `No complete response within ${defaultDeadlineMs} ms.`, true),
      defaultDeadlineMs,
    )
    res.on('close', () => {
      if (pr.done) return
      sendFrame(session, { type: 'CANCEL', rid })
      complete(pr, 499)
    })
    req.on('data', (chunk: Buffer) => {
      if (pr.done) return
      pr.bytesIn += chunk.length
      if (pr.bytesIn > maxRequestBytes) {
        res.shouldKeepAlive = false
        failRequest(
          pr,
          413,
          'TUNNEL_PAYLOAD_TOO_LARGE',
          `The request body exceeds ${maxRequestBytes} bytes.`,
          true,
        )
        return
      }
      const parts = chunk.length <= MAX_BODY_CHUNK_BYTES ? [chunk] : chunksOf(chunk)
      let last: string | Buffer | undefined
      for (const part of parts) {
        if (last !== undefined) sendData(session, last)
        last = session.binary
          ? encodeBinaryBody(BinaryKind.ReqBody, rid, part)
          : JSON.stringify({ type: 'REQ_BODY', rid, chunk_b64: toBase64(part) })
      }
      if (last === undefined) return
      if (session.ws.bufferedAmount + last.length <= wsHighWater) return sendData(session, last)
      // The agent side is behind: stop reading the caller until the WebSocket has flushed.
      req.pause()
      sendData(session, last, () => {
        if (!pr.done) req.resume()
      })
    })
    req.on('end', () => {
      if (!pr.done) sendFrame(session, { type: 'REQ_END', rid })
    })
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/'
    const path = url.split('?')[0] ?? '/'
    const started = debug ? performance.now() : 0
    if (debug)
      res.on('close', () => {
        const pr = tunneled.get(res)
        logger.debug(
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
    const fail = (err: unknown) => {
      logger.error(errorFields(err), 'relay: request handler failed')
      sendProblem(res, 500, 'TUNNEL_INTERNAL_ERROR', 'The relay failed to handle the request.')
    }
    try {
      if (path.startsWith('/s/')) {
        const slash = url.indexOf('/', 3)
        const q = url.indexOf('?', 3)
        const end = slash === -1 ? (q === -1 ? url.length : q) : q !== -1 && q < slash ? q : slash
        const rest = url.slice(end)
        handlePublic(req, res, url.slice(3, end), rest.startsWith('?') ? `/${rest}` : rest || '/').catch(fail)
        return
      }
      if ((path === '/health' || path === '/healthz') && (req.method === 'GET' || req.method === 'HEAD')) {
        return sendJson(res, closing ? 503 : 200, {
          status: closing ? 'closing' : 'ok',
          agents: sessions.size,
          inflight,
        })
      }
      if (path === LEASES_PATH && req.method === 'POST') return void createLease(req, res).catch(fail)
      if (path.startsWith(`${LEASES_PATH}/`) && req.method === 'DELETE') {
        return void deleteLease(req, res, decodeURIComponent(path.slice(LEASES_PATH.length + 1))).catch(fail)
      }
      sendProblem(res, 404, 'TUNNEL_NOT_FOUND', `Nothing at ${req.method} ${path}.`)
    } catch (err) {
      fail(err)
    }
  }

  const server: Server = createServer({ keepAliveTimeout: 5_000 }, onRequest)
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    onUpgrade(req, socket, head).catch(() => rejectUpgrade(socket, 500, 'Internal Server Error'))
  })
  server.on('clientError', (_err, socket) => {
    if (!socket.destroyed) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
  })
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
  const boundPort = typeof address === 'object' && address ? address.port : port
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host
  const selfUrl = `http://${urlHost}:${boundPort}`
  const publicBaseUrl = (options.publicBaseUrl ?? selfUrl).replace(/\/+$/, '')
  const agentConnectUrl = `${publicBaseUrl.replace(/^http/, 'ws')}${AGENT_PATH}`

  const pruneTimer = setInterval(
    () => {
      void (async () => {
        for (const lease of await store.deleteExpired(Date.now()))
          dropLease(lease, CloseCode.LeaseExpired, 'lease expired')
      })().catch((err: unknown) => {
        // a lease store that cannot be written (full disk, permissions) must not go unnoticed
        logger.warn(errorFields(err), 'relay: pruning expired leases failed')
      })
    },
    Math.min(5_000, leaseTtlSeconds * 500),
  )
  pruneTimer.unref()

  const close = () =>
    (closing ??= (async () => {
      clearInterval(pruneTimer)
      const closedServer = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const session of [...sessions.values()]) {
        endSession(session, 502, 'TUNNEL_RELAY_SHUTTING_DOWN', 'The relay is shutting down.')
        session.ws.close(1001, 'relay shutting down')
      }
      const sockets = [...wss.clients]
      await Promise.all(
        sockets.map(
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
      server.closeIdleConnections()
      const force = setTimeout(() => server.closeAllConnections(), 1_000)
      await closedServer
      clearTimeout(force)
      wss.close()
      logger.info({ port: boundPort }, 'relay: closed')
    })())

  const relay: RelayServer = {
    url: selfUrl,
    port: boundPort,
    host,
    publicBaseUrl,
    apiKey: apiKeys[0]!,
    stats: () => ({
      agents: sessions.size,
      inflight,
      memoryInUse: memoryInUse(),
      peakMemoryInUse: peakMemory,
    }),
    close,
    [Symbol.asyncDispose]: close,
  }
  logger.info({ url: selfUrl, publicBaseUrl, apiKey: redact(relay.apiKey) }, 'relay: listening')
  return relay
}
