/** One attached WebSocket: the relay's frames in, the requests that live on it, pings, backpressure. */
import type { Pool } from 'undici'
import WebSocket from 'ws'
import { readRelayMessage } from '../protocol/codec'
import type { BodyCodec, FrameSink, RelayMessage } from '../protocol/codec'
import { corkingSender } from '../protocol/corking-sender'
import { AGENT_CAPACITY_EXCEEDED } from '../protocol/frames'
import type { AgentFrame } from '../protocol/frames'
import { ResponseFrames } from './response-frames'
import type { AgentOptions, SynthTunnelAgent } from './agent'
import { LocalRequest } from './local-request'
import type { RequestHost } from './local-request'

/** One attached WebSocket and the requests that live on it. */
export class AgentConnection implements RequestHost {
  readonly options: AgentOptions
  readonly sink: FrameSink
  readonly codec: BodyCodec
  private readonly requests = new Map<string, LocalRequest>()
  private alive = true
  private readonly pingTimer: NodeJS.Timeout
  private closedResolve!: () => void
  private readonly closedPromise: Promise<void>
  private stallTimer: NodeJS.Timeout | undefined
  /** Response frames out: JSON, or binary control frames with small responses in one message. */
  private readonly out: ResponseFrames

  constructor(
    private readonly agent: SynthTunnelAgent,
    private readonly ws: WebSocket,
    readonly pool: Pool,
    /** Body chunks travel as binary frames (negotiated in ATTACH/ATTACH_ACK). */
    readonly binary: boolean,
    /** Control frames travel as binary frames (negotiated in ATTACH/ATTACH_ACK). */
    readonly control = false,
  ) {
    const o = (this.options = agent.options)
    this.closedPromise = new Promise((r) => (this.closedResolve = r))
    this.sink = corkingSender(ws)
    this.out = new ResponseFrames(this.sink, control)
    // a large request-body frame is read without a copy; response chunks are still copied into
    // their frames (sent as they were, they kept undici's read buffers alive: agent RSS went up)
    ws.binaryType = 'fragments'
    this.codec = {
      direction: 'response',
      binary,
      ...(control ? { merge: (p, chunk) => this.out.merge(p.rid, chunk) } : {}),
    } satisfies BodyCodec
    ws.on('message', (data, isBinary) => {
      this.alive = true
      try {
        this.onMessage(data, isBinary)
      } catch (err) {
        o.logger.error({ err: (err as Error).message }, 'synthtunnel: failed to handle a relay frame')
      }
    })
    ws.on('pong', () => (this.alive = true))
    ws.on('ping', () => (this.alive = true))
    ws.on('close', (code, reason) => {
      clearInterval(this.pingTimer)
      this.abortAll()
      this.closedResolve()
      agent.connectionClosed(this, code, reason.toString())
    })
    this.pingTimer = setInterval(() => this.ping(), o.pingIntervalMs)
    this.pingTimer.unref()
  }

  private ping(): void {
    // while paused (backpressure) we cannot see pongs; the pause itself is bounded by stallTimeoutMs
    if (!this.alive && !this.ws.isPaused) {
      this.options.logger.warn({}, 'synthtunnel: relay did not answer a ping; dropping the connection')
      this.ws.terminate()
      return
    }
    this.alive = false
    this.ws.ping()
  }

  /** Abort every request, close the socket, and wait (at most 1 s) for it to close. */
  async close(code: number, reason: string): Promise<void> {
    this.abortAll()
    if (this.ws.readyState === WebSocket.CLOSED) return
    this.ws.close(code, reason)
    const t = setTimeout(() => this.ws.terminate(), 1_000)
    await this.closedPromise
    clearTimeout(t)
  }

  private abortAll(): void {
    clearTimeout(this.stallTimer)
    this.out.clear()
    for (const request of this.requests.values()) request.drop('connection closed')
    this.requests.clear()
    if (this.ws.isPaused) this.ws.resume()
  }

  /** {@link RequestHost}: send one frame (JSON, or binary when negotiated). */
  send(frame: AgentFrame): void {
    this.out.send(frame)
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    const o = this.options
    const message = readRelayMessage(data, isBinary, this.binary, this.control)
    if (!message) return o.logger.debug({ binary: isBinary }, 'synthtunnel: ignoring a malformed frame')
    switch (message.type) {
      case 'ATTACH_ACK':
        return
      case 'REQ_INVALID':
        // a duplicate rid is ignored like a duplicate REQ_HEADERS; otherwise answer at once
        if (this.requests.has(message.rid)) return
        o.logger.debug(
          { rid: message.rid, reason: message.reason },
          'synthtunnel: refusing a malformed request',
        )
        return this.refuse(message, 'BAD_REQUEST_FRAME', message.reason)
      case 'REQ_HEADERS':
        if (this.requests.has(message.rid)) {
          return o.logger.debug({ rid: message.rid }, 'synthtunnel: ignoring a duplicate REQ_HEADERS')
        }
        if (this.requests.size >= o.maxInflight) {
          return this.refuse(
            message,
            AGENT_CAPACITY_EXCEEDED,
            `The agent already holds ${o.maxInflight} requests.`,
          )
        }
        return this.start(message)
      default:
        return this.onRequestFrame(message)
    }
  }

  /** A new request; one that came whole (binary control frames) is dispatched at once. */
  private start(message: Extract<RelayMessage, { type: 'REQ_HEADERS' }>): void {
    const { inline } = message
    const request = new LocalRequest(this, message)
    this.requests.set(message.rid, request)
    if (!inline) return
    if (inline.body) request.onBody(inline.body)
    // a whole request is handed to the local server at once: it holds nothing more to check
    if (inline.end) request.onEnd()
    else if (inline.body) this.checkPause()
  }

  private refuse(frame: { rid: string; lease_id: string }, code: string, message: string): void {
    this.send({
      type: 'RESP_ERROR',
      lease_id: frame.lease_id || this.options.leaseId,
      rid: frame.rid,
      code,
      message,
    })
  }

  /** REQ_BODY (or a binary body frame), REQ_END, CANCEL: for a request in flight. */
  private onRequestFrame(message: Extract<RelayMessage, { type: 'BODY' | 'REQ_END' | 'CANCEL' }>): void {
    const request = this.requests.get(message.rid)
    if (!request) return
    switch (message.type) {
      case 'BODY':
        request.onBody(message.chunk)
        return this.checkPause()
      case 'REQ_END':
        return request.onEnd()
      case 'CANCEL':
        return request.drop('cancelled by the relay')
    }
  }

  get inflight(): number {
    return this.requests.size
  }

  get queuedBytes(): number {
    return this.ws.bufferedAmount
  }

  /** Request-body bytes received from the relay and not yet taken by the local server. */
  heldBytes(): number {
    let total = 0
    for (const request of this.requests.values()) total += request.heldBytes
    return total
  }

  private checkPause(): void {
    const held = this.heldBytes()
    if (held > this.agent.peakHeldRequestBytes) this.agent.peakHeldRequestBytes = held
    if (this.ws.isPaused || held <= this.options.maxBufferedBytes) return
    // Held-back small bodies must not fill the budget with nobody consuming them (deadlock):
    // hand every one of them to the local server now.
    for (const request of this.requests.values()) if (request.holdsBackBody) request.startStreaming()
    this.ws.pause()
    this.armStall()
  }

  /** A pause may not last forever: drop the request holding the most unread body bytes. */
  private armStall(): void {
    clearTimeout(this.stallTimer)
    this.stallTimer = setTimeout(() => {
      if (!this.ws.isPaused) return
      let worst: LocalRequest | undefined
      let most = 0
      for (const request of this.requests.values()) {
        if (request.heldBytes > most) [worst, most] = [request, request.heldBytes]
      }
      worst?.fail('LOCAL_BAD_RESPONSE', 'The local server stopped reading the request body.')
      if (this.ws.isPaused) this.armStall()
    }, this.options.stallTimeoutMs)
    this.stallTimer.unref()
  }

  /** {@link RequestHost}: the local server took some of a streamed body. */
  bodyPulled(): void {
    if (this.ws.isPaused && this.heldBytes() <= this.options.maxBufferedBytes / 2) {
      clearTimeout(this.stallTimer)
      this.ws.resume()
    }
  }

  /** {@link RequestHost}: forget a request that is over. */
  released(request: LocalRequest): void {
    if (this.requests.get(request.rid) === request) this.requests.delete(request.rid)
    this.bodyPulled()
  }

  /** {@link RequestHost}: note the send queue's peak. */
  queued(): void {
    const queued = this.ws.bufferedAmount
    if (queued > this.agent.peakQueuedResponseBytes) this.agent.peakQueuedResponseBytes = queued
  }
}
