/**
 * One request forwarded to the local server. It owns its state from REQ_HEADERS to the last
 * frame, and is itself the undici dispatch handler of the local request (undici 7's controller
 * API), so the response streams straight into frames from the handler callbacks.
 */
import { Readable } from 'node:stream'
import type { Dispatcher, Pool } from 'undici'
import { sendBody } from '../protocol/codec'
import type { BodyCodec, BodyProducer, FrameSink } from '../protocol/codec'
import {
  AGENT_DROPPED_REQUEST_HEADERS,
  HOP_BY_HOP_HEADERS,
  MAX_BODY_CHUNK_BYTES,
  RELAY_MARKER_HEADER,
  RELAY_MARKER_VALUE,
  connectionTokens,
  connectionTokensOf,
} from '../protocol/frames'
import type { AgentFrame, HeaderPairs, ReqHeadersFrame } from '../protocol/frames'
import { safeLog } from '../types'
import type { AgentOptions } from './agent'

/** Once a request body is this large before REQ_END, it streams to the local server. */
const STREAM_BODY_AT = 4 * MAX_BODY_CHUNK_BYTES
/** Above this many bytes queued on the WebSocket, the local response is paused until a flush. */
const SEND_HIGH_WATER = 1024 * 1024

/** What a {@link LocalRequest} needs from the connection it lives on. */
export interface RequestHost {
  readonly options: AgentOptions
  readonly pool: Pool
  readonly sink: FrameSink
  readonly codec: BodyCodec
  send(frame: AgentFrame): void
  /** The request is over: forget it. */
  released(request: LocalRequest): void
  /** The local server took some of a streamed body. */
  bodyPulled(): void
  /** Response frames were queued (for the peak of the send queue). */
  queued(): void
}

class BodyStream extends Readable {
  constructor(private readonly onPull: () => void) {
    super({ highWaterMark: MAX_BODY_CHUNK_BYTES })
  }
  override _read(): void {
    this.onPull()
  }
}

/** One forwarded request: body buffering, dispatch, response frames, abort. */
export class LocalRequest implements Dispatcher.DispatchHandler, BodyProducer {
  readonly rid: string
  readonly leaseId: string
  /** Why the request was aborted (CANCEL, deadline, lost connection); set once. */
  private abortReason: Error | undefined
  /** undici's controller of the local request, once it is on a connection. */
  private controller: Dispatcher.DispatchController | undefined
  private pre: Buffer[] = []
  private preBytes = 0
  private body: BodyStream | undefined
  /** Handed to undici. */
  dispatched = false
  /** REQ_END seen. */
  private ended = false
  /** Aborted by CANCEL or a lost connection: answer nothing. */
  private silent = false
  private released = false
  private deadlineHit = false
  private readonly timer: NodeJS.Timeout
  private sentHeaders = false
  private responseBytes = 0

  constructor(
    private readonly host: RequestHost,
    readonly frame: ReqHeadersFrame,
  ) {
    this.rid = frame.rid
    this.leaseId = frame.lease_id || host.options.leaseId
    this.timer = setTimeout(() => this.deadline(), frame.deadline_ms)
    this.timer.unref()
  }

  private deadline(): void {
    this.deadlineHit = true
    this.abortLocal(new Error(`deadline of ${this.frame.deadline_ms} ms exceeded`))
    if (!this.dispatched) this.fail('LOCAL_CONNECT_FAILED', 'deadline exceeded before the request ended')
  }

  /** Request-body bytes received from the relay and not yet taken by the local server. */
  get heldBytes(): number {
    return this.preBytes + (this.body?.readableLength ?? 0)
  }

  /** Whether body bytes wait to be handed to the local server (a request not yet dispatched). */
  get holdsBackBody(): boolean {
    return !this.dispatched && this.preBytes > 0
  }

  /** A request body chunk (`undefined`: invalid base64); buffered until REQ_END, streamed once large. */
  onBody(chunk: Buffer | undefined): void {
    if (this.ended) return
    if (!chunk) return this.fail('BAD_REQUEST_FRAME', 'REQ_BODY carries invalid base64')
    if (chunk.length === 0) return
    if (this.body) {
      this.body.push(chunk)
      return
    }
    this.pre.push(chunk)
    this.preBytes += chunk.length
    if (this.preBytes >= STREAM_BODY_AT) this.startStreaming()
  }

  /** REQ_END: the body is complete; dispatch now unless it already streams. */
  onEnd(): void {
    if (this.ended) return
    this.ended = true
    if (this.body) return void this.body.push(null)
    const body = this.preBytes > 0 ? Buffer.concat(this.pre) : undefined
    this.pre = []
    this.preBytes = 0
    this.dispatch(body)
  }

  /** Dispatch while the body is still arriving; the local server consumes it as it comes. */
  startStreaming(): void {
    const body = new BodyStream(() => this.host.bodyPulled())
    for (const c of this.pre) body.push(c)
    this.pre = []
    this.preBytes = 0
    this.body = body
    this.dispatch(body)
  }

  private dispatch(body: Buffer | BodyStream | undefined): void {
    this.dispatched = true
    const { frame } = this
    const path =
      (frame.path.startsWith('/') ? frame.path : `/${frame.path}`) + (frame.query ? `?${frame.query}` : '')
    try {
      this.host.pool.dispatch(
        { method: frame.method, path, headers: this.requestHeaders(), body: body ?? null },
        this,
      )
    } catch (err) {
      this.localFailed(err)
    }
  }

  private requestHeaders(): string[] {
    const { frame } = this
    const keys = this.host.options.localApiKeys
    // a relay that forwards Connection (ours drops it, with what it names) must not make us forward the rest
    const named = connectionTokensOf(frame.headers)
    const out: string[] = []
    let hasLeaseId = false
    let hasRequestId = false
    for (const [name, value] of frame.headers) {
      const lower = name.toLowerCase()
      if (AGENT_DROPPED_REQUEST_HEADERS.has(lower) || named?.has(lower)) continue
      if (keys.length > 0 && (lower === 'x-api-key' || lower === 'x-api-keys')) continue
      out.push(name, value)
      if (lower === 'x-synthtunnel-lease-id') hasLeaseId = true
      else if (lower === 'x-synthtunnel-request-id') hasRequestId = true
    }
    const first = keys[0]
    if (first !== undefined) {
      out.push('x-api-key', first)
      if (keys.length > 1) out.push('x-api-keys', keys.join(','))
      out.push('authorization', `Bearer ${first}`)
    }
    if (!hasLeaseId) out.push('x-synthtunnel-lease-id', this.leaseId)
    if (!hasRequestId) out.push('x-synthtunnel-request-id', frame.rid)
    out.push('x-forwarded-proto', 'https')
    out.push(RELAY_MARKER_HEADER, RELAY_MARKER_VALUE)
    return out
  }

  /** Abort without answering (CANCEL, lost connection). */
  drop(why: string): void {
    this.silent = true
    this.release()
    this.abortLocal(new Error(why))
  }

  /** Answer RESP_ERROR (the relay answers the caller 502) and abort; logged at WARN. */
  fail(code: string, message: string): void {
    if (this.released) return
    const { frame } = this
    safeLog(
      this.host.options.logger,
      'warn',
      { rid: this.rid, leaseId: this.leaseId, method: frame.method, path: frame.path, code, reason: message },
      'synthtunnel: could not serve a request from the local server',
    )
    this.host.send({ type: 'RESP_ERROR', lease_id: this.leaseId, rid: this.rid, code, message })
    this.drop(message)
  }

  private abortLocal(reason: Error): void {
    if (this.abortReason !== undefined) return
    this.abortReason = reason
    this.controller?.abort(reason)
  }

  private release(): void {
    if (this.released) return
    this.released = true
    clearTimeout(this.timer)
    this.pre = []
    this.preBytes = 0
    if (this.body && !this.body.destroyed) this.body.destroy()
    this.host.released(this)
  }

  private localFailed(err: unknown): void {
    if (this.silent || this.released) return
    const message = this.deadlineHit
      ? `deadline of ${this.frame.deadline_ms} ms exceeded`
      : `${(err as Error)?.message ?? String(err)}`
    this.fail(this.sentHeaders ? 'LOCAL_BAD_RESPONSE' : 'LOCAL_CONNECT_FAILED', message)
  }

  /** {@link BodyProducer}: the WebSocket is full; stop reading the local response. */
  pause(): void {
    this.controller?.pause()
  }

  /** {@link BodyProducer}: the WebSocket has flushed. */
  resume(): void {
    if (this.abortReason === undefined) this.controller?.resume()
  }

  /** undici: the request is on a connection (possibly again, after a retry). */
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    if (this.abortReason !== undefined) controller.abort(this.abortReason)
  }

  /** undici: response head. */
  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (status < 200) return // informational
    if (this.abortReason !== undefined) return controller.pause()
    const named = connectionTokens(headers.connection)
    const pairs: HeaderPairs = []
    for (const name in headers) {
      const value = headers[name]
      if (value === undefined || HOP_BY_HOP_HEADERS.has(name) || named?.has(name)) continue
      if (typeof value === 'string') pairs.push([name, value])
      else for (const v of value) pairs.push([name, v])
    }
    this.host.send({ type: 'RESP_HEADERS', lease_id: this.leaseId, rid: this.rid, status, headers: pairs })
    this.sentHeaders = true
  }

  /** undici: a response body chunk, sent on as body frames; paused while the WebSocket is full. */
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.abortReason !== undefined) return controller.pause()
    if (chunk.length === 0) return
    const max = this.host.options.maxResponseBytes
    this.responseBytes += chunk.length
    if (this.responseBytes > max) {
      controller.pause()
      return this.fail('LOCAL_BAD_RESPONSE', `Response too large (over ${max} bytes)`)
    }
    sendBody(this.host.sink, this.host.codec, this, chunk, SEND_HIGH_WATER)
    this.host.queued()
  }

  /** undici: the response is complete. */
  onResponseEnd(): void {
    if (this.abortReason !== undefined) return this.localFailed(this.abortReason)
    this.host.send({ type: 'RESP_END', lease_id: this.leaseId, rid: this.rid })
    this.release()
  }

  /** undici: the local request failed (connect, abort, body stream). */
  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.localFailed(err)
  }
}
