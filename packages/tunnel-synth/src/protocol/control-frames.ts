/**
 * Binary control frames (ours, negotiated as {@link BINARY_CONTROL_CAPABILITY}): `REQ_HEADERS`,
 * `REQ_END`, `CANCEL`, `RESP_HEADERS`, `RESP_END` and `RESP_ERROR` without JSON. A headers frame
 * may carry the first body bytes and the end of its message, so a small request or response is
 * one WebSocket message instead of three.
 *
 * Layout: `[kind u8][flags u8][head length u16][rid: u8 length + utf8]` then the kind's fields,
 * strings prefixed by their byte length (u8 or u16, big-endian, as all numbers); the head length
 * counts all of that, and for headers frames the rest of the message is the inline body. A head that
 * is all ASCII (the usual case) is decoded with one string conversion, its fields sliced from it. Decoders never throw: anything malformed yields `undefined`, and a `REQ_HEADERS`
 * goes through the same checks as its JSON form ({@link reqHeadersFrom}).
 */
import { isAscii } from 'node:buffer'
import { reqHeadersFrom } from './frames'
import type {
  HeaderPairs,
  InvalidRequestFrame,
  ReqHeadersFrame,
  RespEndFrame,
  RespErrorFrame,
  RespHeadersFrame,
  RidFrame,
} from './frames'

/** Capability key (ours) offered in ATTACH and echoed in ATTACH_ACK: control frames in binary. */
export const BINARY_CONTROL_CAPABILITY = 'taskapp_binary_control_frames'
/** Binary control frame kinds (1 and 2 are the body frames of `./codec`). */
export const ControlKind = {
  ReqHeaders: 3,
  ReqEnd: 4,
  Cancel: 5,
  RespHeaders: 6,
  RespEnd: 7,
  RespError: 8,
} as const
/** Flag of a headers frame: the message (request or response) ends with this frame's inline body. */
export const FLAG_END = 1
/** Largest inline body a sender merges into a headers frame. */
export const MAX_INLINE_BODY_BYTES = 16 * 1024

/** A headers frame's inline body and whether it completes the message. */
export interface Inline {
  body: Buffer | undefined
  end: boolean
}

/** Scratch space the encoders write into; the result is copied out at its exact size. */
const scratch = Buffer.allocUnsafe(64 * 1024)

class Writer {
  pos = 0
  ok = true
  constructor(readonly buf: Buffer) {}
  u8(v: number): void {
    if (this.pos + 1 > this.buf.length) return void (this.ok = false)
    this.buf[this.pos++] = v
  }
  u16(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff || this.pos + 2 > this.buf.length)
      return void (this.ok = false)
    this.buf.writeUInt16BE(v, this.pos)
    this.pos += 2
  }
  u32(v: number): void {
    if (this.pos + 4 > this.buf.length) return void (this.ok = false)
    this.buf.writeUInt32BE(v >>> 0, this.pos)
    this.pos += 4
  }
  /** A string with a 1- or 2-byte length prefix; fails (no throw) when it does not fit. */
  str(s: string, prefix: 1 | 2): void {
    if (!this.ok) return
    const start = this.pos + prefix
    // worst case 3 bytes per UTF-16 unit; write() would truncate silently past the end
    if (start + s.length * 3 > this.buf.length && start + Buffer.byteLength(s) > this.buf.length)
      return void (this.ok = false)
    const n = this.buf.write(s, start, 'utf8')
    if (n > (prefix === 1 ? 0xff : 0xffff)) return void (this.ok = false)
    if (prefix === 1) this.buf[this.pos] = n
    else this.buf.writeUInt16BE(n, this.pos)
    this.pos = start + n
  }
  headers(pairs: HeaderPairs): void {
    this.u16(pairs.length)
    for (const [name, value] of pairs) {
      this.str(name, 1)
      this.str(value, 2)
    }
  }
  /** The frame so far plus `body`, in a buffer of its own; `undefined` if anything did not fit. */
  finish(body?: Uint8Array): Buffer | undefined {
    if (!this.ok || this.pos > 0xffff) return undefined
    this.buf.writeUInt16BE(this.pos, 2)
    const extra = body?.byteLength ?? 0
    const out = Buffer.allocUnsafe(this.pos + extra)
    this.buf.copy(out, 0, 0, this.pos)
    if (body && extra > 0) out.set(body, this.pos)
    return out
  }
}

function writer(kind: number, flags: number, rid: string): Writer {
  const w = new Writer(scratch)
  w.u8(kind)
  w.u8(flags)
  w.u16(0) // the head length, set by finish()
  w.str(rid, 1)
  return w
}

/**
 * `REQ_HEADERS`, with the request's first body bytes and `end` when they are all of it.
 * @returns `undefined` when a field is too long for the binary layout: send JSON instead.
 * @example
 * ```ts
 * const frame = encodeReqHeaders(head, body, true) ?? JSON.stringify(head)
 * ```
 */
export function encodeReqHeaders(frame: ReqHeadersFrame, body?: Uint8Array, end = false): Buffer | undefined {
  const w = writer(ControlKind.ReqHeaders, end ? FLAG_END : 0, frame.rid)
  w.str(frame.lease_id, 1)
  w.str(frame.method, 1)
  w.str(frame.path, 2)
  w.str(frame.query, 2)
  w.u32(Math.min(frame.deadline_ms, 0xffffffff))
  w.headers(frame.headers)
  return w.finish(body)
}

/** `RESP_HEADERS`, with inline body bytes and `end` (see {@link encodeReqHeaders}). */
export function encodeRespHeaders(
  frame: RespHeadersFrame,
  body?: Uint8Array,
  end = false,
): Buffer | undefined {
  const w = writer(ControlKind.RespHeaders, end ? FLAG_END : 0, frame.rid)
  w.str(frame.lease_id, 1)
  w.u16(frame.status)
  w.headers(frame.headers)
  return w.finish(body)
}

/** `REQ_END`, `CANCEL` or `RESP_END` (`leaseId` only for `RESP_END`). */
export function encodeRidFrame(kind: number, rid: string, leaseId = ''): Buffer | undefined {
  const w = writer(kind, 0, rid)
  if (kind === ControlKind.RespEnd) w.str(leaseId, 1)
  return w.finish()
}

/** `RESP_ERROR`. */
export function encodeRespError(frame: RespErrorFrame): Buffer | undefined {
  const w = writer(ControlKind.RespError, 0, frame.rid)
  w.str(frame.lease_id, 1)
  w.str(frame.code, 1)
  w.str(frame.message, 2)
  return w.finish()
}

/** Reads the fields of a head; any read past its end sets `bad` and yields empty values. */
class Reader {
  pos = 0
  bad = false
  /** The head as a string when it is all ASCII (byte offsets are string offsets then). */
  private readonly text: string | undefined
  constructor(
    readonly buf: Buffer,
    /** Where the head ends (the inline body starts). */
    readonly end: number,
  ) {
    this.text = isAscii(buf.subarray(0, end)) ? buf.toString('latin1', 0, end) : undefined
  }
  u8(): number {
    if (this.pos + 1 > this.end) return ((this.bad = true), 0)
    return this.buf[this.pos++]!
  }
  u16(): number {
    if (this.pos + 2 > this.end) return ((this.bad = true), 0)
    const v = this.buf.readUInt16BE(this.pos)
    this.pos += 2
    return v
  }
  u32(): number {
    if (this.pos + 4 > this.end) return ((this.bad = true), 0)
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }
  str(prefix: 1 | 2): string {
    const n = prefix === 1 ? this.u8() : this.u16()
    if (this.bad || this.pos + n > this.end) return ((this.bad = true), '')
    const { text, pos } = this
    const s = text !== undefined ? text.slice(pos, pos + n) : this.buf.toString('utf8', pos, pos + n)
    this.pos += n
    return s
  }
  headers(): HeaderPairs {
    const count = this.u16()
    const out: HeaderPairs = []
    for (let i = 0; i < count && !this.bad; i++) out.push([this.str(1), this.str(2)])
    return out
  }
  /** Whether the fields filled the head exactly. */
  get whole(): boolean {
    return !this.bad && this.pos === this.end
  }
  /** The inline body: the rest of the frame (a view, not a copy). */
  rest(): Buffer | undefined {
    return this.end < this.buf.length ? this.buf.subarray(this.end) : undefined
  }
}

/** What the agent reads from a binary control frame. */
export type RelayControl =
  ((ReqHeadersFrame | InvalidRequestFrame) & { inline?: Inline }) | RidFrame<'REQ_END'> | RidFrame<'CANCEL'>

/** What the relay reads from a binary control frame. */
export type AgentControl = (RespHeadersFrame & { inline?: Inline }) | RespEndFrame | RespErrorFrame

function head(data: Buffer): { r: Reader; kind: number; flags: number; rid: string } | undefined {
  if (data.length < 4) return undefined
  const end = data.readUInt16BE(2)
  if (end < 4 || end > data.length) return undefined
  const r = new Reader(data, end)
  r.pos = 4
  const rid = r.str(1)
  return r.bad || rid.length === 0 ? undefined : { r, kind: data[0]!, flags: data[1]!, rid }
}

/**
 * Decode a binary control frame from the relay; `undefined` when malformed or not one.
 * @example
 * ```ts
 * const frame = decodeRelayControl(data) // { type: 'REQ_HEADERS', ..., inline: { body, end: true } }
 * ```
 */
export function decodeRelayControl(data: Buffer): RelayControl | undefined {
  const h = head(data)
  if (!h) return undefined
  const { r, kind, flags, rid } = h
  if (kind === ControlKind.ReqEnd || kind === ControlKind.Cancel) {
    return r.pos === data.length
      ? { type: kind === ControlKind.ReqEnd ? 'REQ_END' : 'CANCEL', rid }
      : undefined
  }
  if (kind !== ControlKind.ReqHeaders) return undefined
  const fields = {
    rid,
    lease_id: r.str(1),
    method: r.str(1),
    path: r.str(2),
    query: r.str(2),
    deadline_ms: r.u32(),
    headers: r.headers(),
  }
  if (!r.whole) return undefined
  const frame = reqHeadersFrom(fields)
  if (!frame || frame.type === 'REQ_INVALID') return frame
  const withInline: ReqHeadersFrame & { inline?: Inline } = frame
  withInline.inline = { body: r.rest(), end: (flags & FLAG_END) !== 0 }
  return withInline
}

/** Decode a binary control frame from the agent; `undefined` when malformed or not one. */
export function decodeAgentControl(data: Buffer): AgentControl | undefined {
  const h = head(data)
  if (!h) return undefined
  const { r, kind, flags, rid } = h
  const leaseId = r.str(1)
  switch (kind) {
    case ControlKind.RespHeaders: {
      const status = r.u16()
      const headers = r.headers()
      if (!r.whole || status < 200 || status > 999) return undefined
      const inline = { body: r.rest(), end: (flags & FLAG_END) !== 0 }
      return { type: 'RESP_HEADERS', lease_id: leaseId, rid, status, headers, inline }
    }
    case ControlKind.RespEnd:
      return !r.whole || r.end !== data.length ? undefined : { type: 'RESP_END', lease_id: leaseId, rid }
    case ControlKind.RespError: {
      const code = r.str(1)
      const message = r.str(2)
      if (!r.whole || r.end !== data.length) return undefined
      return { type: 'RESP_ERROR', lease_id: leaseId, rid, code: code || 'UNKNOWN', message }
    }
    default:
      return undefined
  }
}
