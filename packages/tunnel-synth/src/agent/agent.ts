/** The agent: one lease, its connection to the relay, and its life from start to stop. */
import type { Server } from 'node:http'
import { Pool } from 'undici'
import type WebSocket from 'ws'
import { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
import { safeLog, type Logger } from '../types'
import { GONE_CLOSE_CODES, Reconnector, attach } from './attach'
import { AgentConnection } from './connection'
import { InMemoryDispatcher, requestPairsSupported } from './in-memory-request'
import { inMemoryConnector } from './in-memory-socket'
import type { PeerAddress } from './in-memory-socket'

/** What the agent reports through `onEvent`. */
export type SynthTunnelEvent =
  | { type: 'connected'; connection: number }
  | { type: 'disconnected'; code: number; reason: string }
  | { type: 'reconnecting'; attempt: number; delayMs: number; error?: SynthTunnelError }
  | { type: 'closed'; error?: SynthTunnelError }

/**
 * What the agent holds right now and the most it held, to check its memory bounds: request bodies
 * stay under `maxBufferedBytes` (plus one chunk), the WebSocket send queue near 1 MiB.
 */
export interface SynthTunnelStats {
  connected: boolean
  /** Successful attaches so far (reconnects included). */
  connections: number
  /** Requests the agent is handling. */
  inflight: number
  /** Request-body bytes received from the relay and not yet taken by the local server. */
  heldRequestBytes: number
  peakHeldRequestBytes: number
  /** Bytes queued on the WebSocket towards the relay. */
  queuedResponseBytes: number
  peakQueuedResponseBytes: number
  /**
   * Requests (`inProcess: 'request'`, the default) or connections (`'connection'`) handed to the
   * local server in memory on the in-process path; stays 0 on the socket path.
   */
  inMemory: number
}

/** Internal agent settings (resolved by `synthTunnel`). */
export interface AgentOptions {
  connectUrl: string
  /** Agent URLs dialed in turn, one per attempt (the lease's first, then other relay nodes). @default [connectUrl] */
  connectUrls?: readonly string[]
  agentToken: string
  leaseId: string
  agentId: string
  localOrigin: string
  localTarget: { host: string; port: number }
  /** The local server itself when it runs in this process: requests reach it in memory. */
  localServer?: Server | undefined
  /** How: a request/response pair per request, or in-memory connections. @default 'request' */
  inProcessMode?: 'request' | 'connection'
  localApiKeys: readonly string[]
  maxInflight: number
  maxResponseBytes: number
  maxBufferedBytes: number
  attachTimeoutMs: number
  pingIntervalMs: number
  reconnectInitialMs: number
  reconnectMaxMs: number
  /** Jitter source of the reconnect backoff, in [0, 1). @default Math.random */
  random?: () => number
  /** Longest the agent stops reading the relay because the local server does not read a body. */
  stallTimeoutMs: number
  /** Offer binary body and control frames in ATTACH (each used only when the relay accepts it). */
  binaryFrames: boolean
  logger: Logger
  onEvent?: ((event: SynthTunnelEvent) => void) | undefined
}

/**
 * The SynthTunnel agent: dials the relay, attaches, forwards requests to the local server and
 * reconnects on any drop. One agent serves one lease. Use it through `synthTunnel()`.
 */
export class SynthTunnelAgent {
  /** Resolves when the agent stops for good (`stop()`, or the lease is gone). */
  readonly closed: Promise<void>
  /** Why the agent stopped on its own, if it did. */
  error: SynthTunnelError | undefined
  /** Successful attaches so far. */
  connections = 0
  private resolveClosed!: () => void
  private readonly pool: Pool
  private conn: AgentConnection | undefined
  private stopped = false
  private readonly reconnector: Reconnector
  /** When the last connection dropped (`performance.now()`), until the next attach. */
  private disconnectedAt: number | undefined
  /** The relay's address as the attached WebSocket sees it (what in-memory requests report). */
  private relayPeer: PeerAddress | undefined
  private inMemoryConnections = 0
  private memory: InMemoryDispatcher | undefined
  /** Attach attempts so far: picks the next of `connectUrls`. */
  private dials = 0

  constructor(readonly options: AgentOptions) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve))
    const server = options.localServer
    if (server && options.inProcessMode === 'request' && requestPairsSupported()) {
      this.memory = new InMemoryDispatcher(server, () => this.relayPeer)
      this.pool = this.memory as unknown as Pool
    } else
      this.pool = new Pool(options.localOrigin, {
        connections: options.maxInflight,
        headersTimeout: 0,
        bodyTimeout: 0,
        keepAliveTimeout: 4_000,
        ...(server
          ? {
              connect: inMemoryConnector(
                server,
                () => this.relayPeer,
                () => (this.inMemoryConnections += 1),
              ),
            }
          : {}),
      })
    this.reconnector = new Reconnector(
      {
        options,
        isStopped: () => this.stopped,
        connect: () => this.connect(),
        gone: (error) => this.finish(error),
        emit: (event) => this.emit(event),
      },
      options.random,
    )
  }

  /** The first connection: resolves on ATTACH_ACK, rejects with a `SynthTunnelError`. */
  async start(signal?: AbortSignal): Promise<void> {
    await this.connect(signal)
  }

  /** Stop: abort in-flight work, close the WebSocket, stop reconnecting. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return this.closed
    this.stopped = true
    this.reconnector.cancel()
    const conn = this.conn
    this.conn = undefined
    if (conn) await conn.close(1000, 'agent stopping')
    await this.pool.destroy().catch(() => {})
    this.finish(undefined)
  }

  get connected(): boolean {
    return this.conn !== undefined
  }

  /** Highest request-body bytes held at once (see {@link SynthTunnelStats}). */
  peakHeldRequestBytes = 0
  /** Highest bytes queued on the WebSocket at once right after sending response frames. */
  peakQueuedResponseBytes = 0

  stats(): SynthTunnelStats {
    const conn = this.conn
    return {
      connected: conn !== undefined,
      connections: this.connections,
      inflight: conn?.inflight ?? 0,
      heldRequestBytes: conn?.heldBytes() ?? 0,
      peakHeldRequestBytes: this.peakHeldRequestBytes,
      queuedResponseBytes: conn?.queuedBytes ?? 0,
      peakQueuedResponseBytes: this.peakQueuedResponseBytes,
      inMemory: this.inMemoryConnections + (this.memory?.handed ?? 0),
    }
  }

  private emit(event: SynthTunnelEvent): void {
    try {
      this.options.onEvent?.(event)
    } catch (err) {
      this.options.logger.warn({ err }, 'synthtunnel: onEvent listener threw')
    }
  }

  private finish(error: SynthTunnelError | undefined): void {
    if (this.error === undefined) this.error = error
    if (!this.stopped) {
      this.stopped = true
      this.reconnector.cancel()
      void this.pool.destroy().catch(() => {})
    }
    if (error) this.options.logger.warn({ code: error.code }, `synthtunnel: agent stopped: ${error.message}`)
    this.emit({ type: 'closed', ...(error ? { error } : {}) })
    this.resolveClosed()
  }

  /** One attach attempt; on ATTACH_ACK the socket becomes the agent's connection. */
  private connect(signal?: AbortSignal): Promise<void> {
    const urls = this.options.connectUrls ?? []
    const url = urls.length > 1 ? urls[this.dials % urls.length]! : this.options.connectUrl
    this.dials += 1
    const options = url === this.options.connectUrl ? this.options : { ...this.options, connectUrl: url }
    return attach(options, signal, (ws, binary, control, peer) => this.adopt(ws, binary, control, peer))
  }

  private adopt(ws: WebSocket, binary: boolean, control: boolean, peer: PeerAddress | undefined): boolean {
    if (this.stopped) return false
    this.relayPeer = peer
    this.conn = new AgentConnection(this, ws, this.pool, binary, control)
    this.connections += 1
    const fields = { connection: this.connections, leaseId: this.options.leaseId, binary, control }
    if (this.disconnectedAt === undefined)
      safeLog(this.options.logger, 'info', fields, 'synthtunnel: agent connected')
    else {
      const downtimeMs = Math.round(performance.now() - this.disconnectedAt)
      const attempts = this.reconnector.attempts
      safeLog(
        this.options.logger,
        'info',
        { ...fields, attempts, downtimeMs },
        'synthtunnel: agent reconnected',
      )
    }
    this.disconnectedAt = undefined
    this.reconnector.reset()
    this.emit({ type: 'connected', connection: this.connections })
    return true
  }

  /** Called by a connection when its socket is gone. */
  connectionClosed(conn: AgentConnection, code: number, reason: string): void {
    if (this.conn !== conn) return
    this.conn = undefined
    if (this.stopped) return
    this.disconnectedAt = performance.now()
    this.options.logger.warn({ code, reason }, 'synthtunnel: agent disconnected')
    this.emit({ type: 'disconnected', code, reason })
    if (GONE_CLOSE_CODES.has(code)) {
      this.finish(
        new SynthTunnelError(
          SynthTunnelErrorCode.LeaseGone,
          `The relay ended the lease (close code ${code}${reason ? `: ${reason}` : ''}). Open a new tunnel.`,
          { status: code },
        ),
      )
      return
    }
    this.reconnector.schedule()
  }
}
