/** Public traffic on `/s/<route_token>/...`: admission, then one request forwarded through its agent. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { sendBody } from '../protocol/codec'
import type { BodyCodec, BodyProducer } from '../protocol/codec'
import { AGENT_CAPACITY_EXCEEDED } from '../protocol/frames'
import type { ReqHeadersFrame, RespErrorFrame, RespHeadersFrame } from '../protocol/frames'
import { MAX_INLINE_BODY_BYTES } from '../protocol/control-frames'
import type { AgentSession } from './agent-session'
import { BodyClock } from './body-clock'
import type { RelayLease } from './lease-store'
import { sendProblem } from './problem'
import type { RelayContext } from './relay-context'
import { forwardedHeaders } from './request-head'
import { responseHead } from './response-head'
import { redact, safeLog } from '../types'

const REQUEST_BODY: BodyCodec = { direction: 'request', binary: false }
const REQUEST_BODY_BINARY: BodyCodec = { direction: 'request', binary: true, ownChunks: true } // socket reads

/** One public request in flight through an agent: its frames out, and its response back. */
export class PublicRequest implements BodyProducer {
  readonly rid: string
  /** Request bodies carry no lease id. */
  readonly leaseId = ''
  done = false
  headersSent = false
  bytesIn = 0
  bytesOut = 0
  /** Status the relay ended the request with when it is not the response's (e.g. 499: caller left). */
  status: number | undefined
  /** The body length the caller was promised (`Content-Length`), when the response has a body. */
  private declaredLength: number | undefined
  private timer: NodeJS.Timeout | undefined
  private stallTimer: NodeJS.Timeout | undefined
  /** Times the caller's body while it arrives; unset once it has ended (or there was none). */
  private clock: BodyClock | undefined

  constructor(
    private readonly ctx: RelayContext,
    readonly session: AgentSession,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    /** The lease it was admitted through: its in-flight shares are given back on completion. */
    private readonly admitted: RelayLease,
  ) {
    this.rid = ctx.nextRid()
  }

  /** Send REQ_HEADERS, then the body as it comes, then REQ_END; arm the deadline. */
  forward(leaseId: string, rest: string, dropAuthorization: boolean): void {
    const { session, req, res, rid } = this
    const { defaultDeadlineMs } = this.ctx.settings
    const q = rest.indexOf('?')
    const path = q === -1 ? rest : rest.slice(0, q)
    const frame: ReqHeadersFrame = {
      type: 'REQ_HEADERS',
      lease_id: leaseId,
      rid,
      method: req.method ?? 'GET',
      path: path || '/',
      query: q === -1 ? '' : rest.slice(q + 1),
      headers: forwardedHeaders(req, dropAuthorization),
      deadline_ms: defaultDeadlineMs,
    }
    const whole = this.wholeBody()
    const ended = session.sendFrame(frame, whole, whole !== undefined)
    this.timer = setTimeout(
      () => this.fail(504, 'TUNNEL_TIMEOUT', `No complete response within ${defaultDeadlineMs} ms.`, true),
      defaultDeadlineMs,
    )
    res.on('close', () => {
      if (this.done) return
      session.sendFrame({ type: 'CANCEL', rid })
      this.complete(499)
    })
    if (ended) return // the body and its end went with the headers
    // HTTP/1.1: a request has a body only with a Content-Length or a Transfer-Encoding
    const hasBody =
      req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > 0
    if (hasBody && !req.complete) {
      this.clock = new BodyClock(this.ctx.settings, (detail) => this.tooSlow(detail))
      this.clock.start()
    }
    if (whole) this.sendBodyChunk(whole) // binary control frames not negotiated, or the head too long
    req.on('data', (chunk: Buffer) => this.onRequestData(chunk))
    req.on('end', () => {
      this.clock?.stop()
      this.clock = undefined
      if (!this.done) session.sendFrame({ type: 'REQ_END', rid })
    })
  }

  /**
   * The whole request body when it has already arrived (a small request usually comes in one
   * packet with its head) and binary control frames let it go with the headers; read off `req`.
   */
  private wholeBody(): Buffer | undefined {
    const { req, session } = this
    const limit = Math.min(MAX_INLINE_BODY_BYTES, this.ctx.settings.maxRequestBytes)
    if (!session.control || req.readableLength > limit) return undefined
    // all of it is here: the parser is done, or a Content-Length body (or none) is all buffered
    const chunked = req.headers['transfer-encoding'] !== undefined
    const length = Number(req.headers['content-length'] ?? 0)
    if (!req.complete && (chunked || length !== req.readableLength)) return undefined
    const chunks: Buffer[] = []
    for (let chunk: Buffer | null; (chunk = req.read() as Buffer | null) !== null;) chunks.push(chunk)
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
    this.bytesIn = body.length
    return body
  }

  /** The caller's body stalled or trickles: 408, CANCEL to the agent, the slot freed at once. */
  private tooSlow(detail: string): void {
    if (this.done) return
    this.ctx.shares.rejected.slowBody += 1
    this.res.shouldKeepAlive = false // the rest of the body is not read: the connection ends
    this.fail(408, 'TUNNEL_REQUEST_BODY_TIMEOUT', detail, true, { connection: 'close' })
  }

  private onRequestData(chunk: Buffer): void {
    if (this.done) return
    const { maxRequestBytes } = this.ctx.settings
    this.bytesIn += chunk.length
    this.clock?.bytesIn(chunk.length)
    if (this.bytesIn > maxRequestBytes) {
      this.res.shouldKeepAlive = false
      this.fail(413, 'TUNNEL_PAYLOAD_TOO_LARGE', `The request body exceeds ${maxRequestBytes} bytes.`, true)
      return
    }
    this.sendBodyChunk(chunk)
  }

  /** Send a body chunk; paused (the agent side is behind) until the WebSocket has flushed. */
  private sendBodyChunk(chunk: Buffer): void {
    if (chunk.length === 0) return
    const codec = this.session.binary ? REQUEST_BODY_BINARY : REQUEST_BODY
    sendBody(this.session.sink, codec, this, chunk, this.ctx.settings.wsHighWater)
  }

  /** {@link BodyProducer}: stop reading the caller's body (the relay's doing: its clock stops). */
  pause(): void {
    this.clock?.stop()
    this.req.pause()
  }

  /** {@link BodyProducer}: read the caller's body again, timing it from now. */
  resume(): void {
    if (this.done) return
    this.clock?.start()
    this.req.resume()
  }

  /**
   * RESP_HEADERS: write the head, corked until the next turn so it leaves with the first body
   * (unless `cork` is `false`: the caller writes the whole response at once).
   */
  onHeaders(frame: RespHeadersFrame, cork = true): void {
    if (this.headersSent) return this.bad('RESP_HEADERS twice')
    const head = responseHead(frame.headers, this.ctx.settings.allowSetCookie)
    if (typeof head === 'string') return this.bad(head)
    const res = this.res
    const bodiless = this.req.method === 'HEAD' || frame.status === 204 || frame.status === 304
    if (!bodiless) this.declaredLength = head.contentLength
    try {
      // A body that ends short of or runs past its Content-Length must not pass for a whole response
      // (nor smuggle a second one): onBody and onEnd check it, and Node throws as a second net.
      res.strictContentLength = true
      res.writeHead(frame.status, head.headers)
      if (cork) {
        res.cork()
        this.ctx.uncorkNextTurn(this)
      }
      this.session.writing.add(this)
    } catch (err) {
      res.removeHeader('content-length')
      return this.bad(`invalid response headers (${(err as Error).message})`)
    }
    this.headersSent = true
  }

  /** Undo {@link onHeaders}' cork: headers go with the body frames of their turn, flushed alone otherwise. */
  uncork(): void {
    const res = this.res
    if (!this.done && this.bytesOut === 0 && !res.destroyed) res.flushHeaders()
    res.uncork()
  }

  /** A response body chunk; a caller that falls behind pauses the agent's WebSocket. */
  onBody(chunk: Buffer | undefined): void {
    if (!this.headersSent) return this.bad('RESP_BODY before RESP_HEADERS')
    if (!chunk) return this.bad('RESP_BODY with invalid base64')
    const { maxResponseBytes, perRequestAllowance, memoryBudgetBytes } = this.ctx.settings
    this.bytesOut += chunk.length
    if (this.bytesOut > maxResponseBytes) {
      this.fail(502, 'TUNNEL_PAYLOAD_TOO_LARGE', `The response exceeds ${maxResponseBytes} bytes.`, true)
      return
    }
    if (this.declaredLength !== undefined && this.bytesOut > this.declaredLength) {
      // not one byte past the promised length: it would be read as the start of the next response
      return this.bad(`more body than its Content-Length of ${this.declaredLength} bytes`)
    }
    try {
      this.res.write(chunk)
    } catch (err) {
      const detail = `Unwritable response body (${(err as Error).message}).`
      this.fail(502, 'TUNNEL_BAD_AGENT_RESPONSE', detail, true)
      return
    }
    if (this.res.writableLength > perRequestAllowance || this.ctx.memoryInUse() > memoryBudgetBytes) {
      this.waitForCaller()
    }
  }

  /** The caller is behind: stop reading from the agent rather than buffering for it, for a while. */
  private waitForCaller(): void {
    const { session } = this
    if (!session.pauseFor(this.rid)) return
    const { stallTimeoutMs } = this.ctx.settings
    this.stallTimer = setTimeout(
      () => this.fail(504, 'TUNNEL_TIMEOUT', `The caller did not read for ${stallTimeoutMs} ms.`, true),
      stallTimeoutMs,
    )
    this.stallTimer.unref()
    this.res.once('drain', () => {
      clearTimeout(this.stallTimer)
      session.resumeFor(this.rid)
    })
  }

  /** A whole response in one message (binary control frames): head, body and end in one write. */
  onWhole(frame: RespHeadersFrame, body: Buffer | undefined): void {
    const length = body?.length ?? 0
    this.onHeaders(frame, false)
    if (this.done || !this.headersSent) return
    const declared = this.declaredLength ?? length
    if (declared !== length || length > this.ctx.settings.maxResponseBytes) {
      if (body) this.onBody(body) // refused there, as when it comes in frames of its own
      return this.onEnd()
    }
    this.bytesOut = length
    this.complete()
    try {
      this.res.end(body)
    } catch {
      this.status = 502
      this.res.destroy()
    }
  }

  /** RESP_END. */
  onEnd(): void {
    if (!this.headersSent) return this.bad('RESP_END before RESP_HEADERS')
    this.complete()
    if (this.declaredLength === undefined || this.bytesOut === this.declaredLength) {
      try {
        return void this.res.end()
      } catch {
        // Node's own Content-Length check: reset below
      }
    }
    this.status = 502 // the body did not match its Content-Length
    this.logFailure(502, 'TUNNEL_BAD_AGENT_RESPONSE', 'The body did not match its Content-Length.')
    this.res.destroy()
  }

  /** RESP_ERROR: the agent could not serve the request. */
  onError(frame: RespErrorFrame): void {
    const capacity = frame.code === AGENT_CAPACITY_EXCEEDED
    this.fail(
      capacity ? 429 : 502,
      capacity ? 'TUNNEL_CAPACITY_EXCEEDED' : 'TUNNEL_UPSTREAM_ERROR',
      `The agent answered ${frame.code}: ${frame.message}`,
      false,
      capacity ? { 'retry-after': '1' } : {},
    )
  }

  private bad(why: string): void {
    this.fail(502, 'TUNNEL_BAD_AGENT_RESPONSE', `The agent broke the protocol: ${why}.`, true)
  }

  /** End with an error (problem+json, or a reset when the response has begun); `cancel` tells the agent. */
  fail(
    status: number,
    code: string,
    detail: string,
    cancel: boolean,
    extra: Record<string, string> = {},
  ): void {
    if (this.done) return
    if (cancel) this.session.sendFrame({ type: 'CANCEL', rid: this.rid })
    this.complete(status)
    if (status === 502 || status === 504) this.logFailure(status, code, detail)
    sendProblem(this.res, status, code, detail, extra)
  }

  /** A 502 or 504 the relay answers (or a response it cuts) is logged at WARN: the caller got no answer. */
  private logFailure(status: number, code: string, reason: string): void {
    safeLog(
      this.ctx.logger,
      'warn',
      {
        route: redact(this.admitted.routeToken),
        leaseId: this.admitted.leaseId,
        rid: this.rid,
        method: this.req.method,
        status,
        code,
        reason,
      },
      `relay: ${status} for a tunneled request`,
    )
  }

  /** Leave the in-flight books: timers, counters, the agent's pause on our behalf, an unread body. */
  complete(status?: number): void {
    if (this.done) return
    this.done = true
    clearTimeout(this.timer)
    clearTimeout(this.stallTimer)
    this.clock?.stop()
    const s = this.session
    if (s.inflight.delete(this.rid)) this.ctx.shares.release(this.admitted)
    s.writing.delete(this)
    s.resumeFor(this.rid)
    if (this.req.isPaused()) this.req.resume() // discard the rest of an unread body
    if (status !== undefined) this.status = status
  }
}
