/**
 * The agent's response frames out: JSON as the reference has them, or (negotiated) binary control
 * frames, where a response's head waits until the end of the event-loop turn so that a small
 * response (head, body, end) leaves as one WebSocket message.
 */
import type { FrameSink } from '../protocol/codec'
import {
  ControlKind,
  FLAG_END,
  MAX_INLINE_BODY_BYTES,
  encodeRespError,
  encodeRespHeaders,
  encodeRidFrame,
} from '../protocol/control-frames'
import type { AgentFrame } from '../protocol/frames'

/** A binary `RESP_HEADERS` not sent yet, and the body bytes that will go inline with it. */
interface Held {
  head: Buffer
  chunks: Buffer[]
  bytes: number
}

/**
 * Response frames of one connection. With `control`, `RESP_HEADERS` is held until the response
 * ends, its inline body would pass {@link MAX_INLINE_BODY_BYTES}, another frame of its request
 * goes out, or the turn ends; whichever comes first sends it.
 * @example
 * ```ts
 * const out = new ResponseFrames(corkingSender(ws), true)
 * out.send({ type: 'RESP_HEADERS', lease_id: 'l', rid: '1', status: 200, headers: [] })
 * ```
 */
export class ResponseFrames {
  private readonly held = new Map<string, Held>()
  private scheduled = false
  private readonly flushAll = (): void => {
    this.scheduled = false
    for (const rid of [...this.held.keys()]) this.flush(rid)
  }

  constructor(
    private readonly sink: FrameSink,
    private readonly control: boolean,
  ) {}

  /** Send (or hold) one frame. */
  send(frame: AgentFrame): void {
    if (!this.control) return this.sink.send(JSON.stringify(frame))
    let binary: Buffer | undefined
    switch (frame.type) {
      case 'RESP_HEADERS':
        binary = encodeRespHeaders(frame)
        if (binary) return this.hold(frame.rid, binary)
        break
      case 'RESP_END':
        if (this.flush(frame.rid, true)) return
        binary = encodeRidFrame(ControlKind.RespEnd, frame.rid, frame.lease_id)
        break
      case 'RESP_ERROR':
        this.flush(frame.rid)
        binary = encodeRespError(frame)
        break
      default:
        this.flush(frame.rid)
    }
    this.sink.send(binary ?? JSON.stringify(frame))
  }

  /**
   * A body chunk of `rid`: `true` when it was taken to go inline with the held head; `false` when
   * it must be sent as a body frame (the head, if held, has just been sent).
   */
  merge(rid: string, chunk: Buffer): boolean {
    const held = this.held.get(rid)
    if (!held) return false
    if (held.bytes + chunk.length <= MAX_INLINE_BODY_BYTES) {
      held.chunks.push(chunk)
      held.bytes += chunk.length
      return true
    }
    this.flush(rid)
    return false
  }

  /** Forget what is held (the connection is gone). */
  clear(): void {
    this.held.clear()
  }

  private hold(rid: string, head: Buffer): void {
    this.flush(rid) // a second head for one rid: keep the order
    this.held.set(rid, { head, chunks: [], bytes: 0 })
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(this.flushAll)
  }

  /** Send `rid`'s held head with its inline body (and the end, when `end`); `false` if none held. */
  private flush(rid: string, end = false): boolean {
    const held = this.held.get(rid)
    if (!held) return false
    this.held.delete(rid)
    const { head, chunks } = held
    if (end) head[1] = head[1]! | FLAG_END
    this.sink.send(chunks.length === 0 ? head : Buffer.concat([head, ...chunks]))
    return true
  }
}
