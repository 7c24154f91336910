/** One attached agent WebSocket: the ATTACH handshake, its frames, pings and backpressure. */
import type { WebSocket } from 'ws'
import { BINARY_FRAMES_CAPABILITY, rawToBuffer, readAgentMessage } from '../protocol/codec'
import type { AgentMessage, FrameSink } from '../protocol/codec'
import {
  BINARY_CONTROL_CAPABILITY,
  ControlKind,
  encodeReqHeaders,
  encodeRidFrame,
} from '../protocol/control-frames'
import { corkingSender } from '../protocol/corking-sender'
import { CloseCode, parseAttachFrame } from '../protocol/frames'
import type { AttachFrame, ReqHeadersFrame, RidFrame } from '../protocol/frames'
import type { RelayLease } from './lease-store'
import type { PublicRequest } from './public-request'
import type { RelayContext } from './relay-context'

/** An agent attached to a lease, and the public requests it serves. */
export class AgentSession {
  readonly sink: FrameSink
  readonly agentId: string
  /** Body chunks as binary frames (negotiated). */
  readonly binary: boolean
  /** Control frames (headers, ends, cancel) as binary frames (negotiated). */
  readonly control: boolean
  readonly maxInflight: number
  readonly inflight = new Map<string, PublicRequest>()
  /**
   * In-flight requests whose response has begun (headers or body written). Only these can hold
   * bytes in a caller's write buffer, so memoryInUse() sums over them, not over all in flight.
   */
  readonly writing = new Set<PublicRequest>()
  /** Requests whose callers are behind; the socket stays paused while there is any. */
  private readonly pausedBy = new Set<string>()
  private alive = true
  private readonly pingTimer: NodeJS.Timeout

  constructor(
    private readonly ctx: RelayContext,
    readonly ws: WebSocket,
    readonly lease: RelayLease,
    attach: AttachFrame,
  ) {
    const { settings } = ctx
    const advertised = attach.capabilities.max_inflight
    this.agentId = attach.agent_id
    this.binary = settings.binaryFrames && attach.capabilities[BINARY_FRAMES_CAPABILITY] === true
    this.control = settings.binaryFrames && attach.capabilities[BINARY_CONTROL_CAPABILITY] === true
    this.maxInflight =
      typeof advertised === 'number' && advertised > 0
        ? Math.min(settings.maxInflight, advertised)
        : settings.maxInflight
    this.sink = corkingSender(ws)
    this.pingTimer = setInterval(() => this.ping(), settings.pingIntervalMs)
    this.pingTimer.unref()
    ws.on('pong', () => (this.alive = true))
  }

  private ping(): void {
    // while we do not read the socket (backpressure) a pong cannot be seen; stalls are bounded apart
    if (!this.alive && !this.ws.isPaused) {
      this.ctx.logger.warn({ leaseId: this.lease.leaseId }, 'relay: agent did not answer a ping; dropping it')
      this.ws.terminate()
      return
    }
    this.alive = false
    this.ws.ping()
  }

  /**
   * Send `REQ_HEADERS` (with the whole body and its end when `end`: one message for a small
   * request, binary control frames only), `REQ_END` or `CANCEL`; dropped once the socket is closed.
   * @returns `true` when the body and end went with the headers.
   */
  sendFrame(frame: ReqHeadersFrame | RidFrame<'REQ_END' | 'CANCEL'>, body?: Buffer, end = false): boolean {
    if (this.control) {
      const binary =
        frame.type === 'REQ_HEADERS'
          ? encodeReqHeaders(frame, body, end)
          : encodeRidFrame(frame.type === 'REQ_END' ? ControlKind.ReqEnd : ControlKind.Cancel, frame.rid)
      if (binary) {
        this.sink.send(binary)
        return end
      }
    }
    this.sink.send(JSON.stringify(frame))
    return false
  }

  /** Pause reading the agent on behalf of `rid`; `false` when it already did. */
  pauseFor(rid: string): boolean {
    if (!this.ws.isPaused) this.ws.pause()
    if (this.pausedBy.has(rid)) return false
    this.pausedBy.add(rid)
    return true
  }

  /** Lift `rid`'s pause; reading resumes when no request holds one. */
  resumeFor(rid: string): void {
    if (this.pausedBy.delete(rid) && this.pausedBy.size === 0 && this.ws.isPaused) this.ws.resume()
  }

  /** One message from the agent. */
  onMessage(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    this.alive = true // any traffic proves the agent is alive
    const message = readAgentMessage(data, isBinary, this.binary, this.control)
    if (!message) {
      if (!isBinary)
        this.ctx.logger.debug({ leaseId: this.lease.leaseId }, 'relay: ignoring a malformed agent frame')
      return
    }
    const pr = this.inflight.get(message.rid)
    if (pr) dispatch(pr, message)
  }

  /** The session is over: forget it and fail what it still serves. */
  end(status: number, code: string, detail: string): void {
    clearInterval(this.pingTimer)
    const { sessions } = this.ctx
    if (sessions.get(this.lease.leaseId) === this) {
      sessions.delete(this.lease.leaseId)
      this.ctx.cluster?.detached(this)
    }
    for (const pr of [...this.inflight.values()])
      pr.fail(status, code, detail, false, { connection: 'close' })
  }
}

function dispatch(pr: PublicRequest, message: AgentMessage): void {
  switch (message.type) {
    case 'RESP_HEADERS': {
      const inline = message.inline
      if (inline?.end) return pr.onWhole(message, inline.body)
      pr.onHeaders(message)
      if (inline?.body && !pr.done) pr.onBody(inline.body)
      return
    }
    case 'BODY':
      return pr.onBody(message.chunk)
    case 'RESP_END':
      return pr.onEnd()
    case 'RESP_ERROR':
      return pr.onError(message)
  }
}

/** Take the first frame of a new agent socket: a valid ATTACH for `lease` starts a session. */
function attach(ctx: RelayContext, ws: WebSocket, lease: RelayLease, text: string): AgentSession | undefined {
  const frame = parseAttachFrame(text)
  if (!frame || (frame.leases.length > 0 && !frame.leases.some((l) => l.lease_id === lease.leaseId))) {
    ws.close(CloseCode.BadAttach, 'expected ATTACH for this lease')
    return undefined
  }
  const previous = ctx.sessions.get(lease.leaseId)
  if (previous) {
    previous.end(
      502,
      'TUNNEL_AGENT_DISCONNECTED',
      'A newer agent connection replaced the one serving this request.',
    )
    previous.ws.close(CloseCode.Replaced, 'replaced by a newer agent connection')
  }
  const session = new AgentSession(ctx, ws, lease, frame)
  ctx.sessions.set(lease.leaseId, session)
  ctx.observer?.attached(lease)
  ctx.cluster?.attached(session)
  const { binary, control } = session
  const capabilities = {
    ...(binary ? { [BINARY_FRAMES_CAPABILITY]: true } : {}),
    ...(control ? { [BINARY_CONTROL_CAPABILITY]: true } : {}),
  }
  ws.send(
    JSON.stringify({
      type: 'ATTACH_ACK',
      agent_id: frame.agent_id,
      lease_ids: [lease.leaseId],
      ...(binary || control ? { capabilities } : {}),
    }),
  )
  ctx.logger.info(
    { leaseId: lease.leaseId, agentId: frame.agent_id, binary, control },
    'relay: agent attached',
  )
  return session
}

/**
 * Serve a freshly upgraded agent socket for `lease`: wait for ATTACH (closing with 4008 past
 * `attachTimeoutMs`), then route its frames to the requests in flight until it closes.
 * @example
 * ```ts
 * wss.handleUpgrade(req, socket, head, (ws) => acceptAgent(ctx, ws, lease))
 * ```
 */
export function acceptAgent(ctx: RelayContext, ws: WebSocket, lease: RelayLease): void {
  ws.on('error', () => {})
  ws.binaryType = 'fragments' // a large body frame's payload is read without a copy (codec.ts)
  const attachTimer = setTimeout(
    () => ws.close(CloseCode.AttachTimeout, 'ATTACH expected'),
    ctx.settings.attachTimeoutMs,
  )
  attachTimer.unref()
  let session: AgentSession | undefined
  ws.on('message', (data, isBinary) => {
    if (session) {
      try {
        session.onMessage(data, isBinary)
      } catch (err) {
        ctx.logger.error({ err: (err as Error).message }, 'relay: failed to handle an agent frame')
      }
      return
    }
    if (isBinary) return
    clearTimeout(attachTimer)
    session = attach(ctx, ws, lease, rawToBuffer(data).toString('utf8'))
  })
  ws.on('close', (code) => {
    clearTimeout(attachTimer)
    if (!session) return
    ctx.logger.info({ leaseId: lease.leaseId, code }, 'relay: agent detached')
    session.end(502, 'TUNNEL_AGENT_DISCONNECTED', 'The agent disconnected while the request was in flight.')
  })
}
