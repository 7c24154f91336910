/**
 * Body frames, both ways and both encodings: the one place that cuts a body into frames of at most
 * {@link MAX_BODY_CHUNK_BYTES} and the one place that reads a body chunk back, whether it came as
 * the reference's base64 JSON (`REQ_BODY` / `RESP_BODY`) or as our negotiated binary frame.
 */
import { decodeAgentControl, decodeRelayControl } from './control-frames'
import type { Inline } from './control-frames'
import { MAX_BODY_CHUNK_BYTES, parseAgentFrame, parseRelayFrame } from './frames'
import type { AgentFrame, RelayFrame, ReqHeadersFrame, RespHeadersFrame } from './frames'

/** Capability key (ours) offered in ATTACH and echoed in ATTACH_ACK: body chunks as binary frames. */
export const BINARY_FRAMES_CAPABILITY = 'taskapp_binary_body_frames'
/** Binary frame kinds. */
export const BinaryKind = { ReqBody: 1, RespBody: 2 } as const

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Decode standard padded base64; `undefined` when it is not valid base64. */
export function decodeBase64(value: unknown): Buffer | undefined {
  if (typeof value !== 'string' || value.length % 4 !== 0 || !BASE64.test(value)) return undefined
  return Buffer.from(value, 'base64')
}

/** Base64 of a byte view. */
export function toBase64(chunk: Uint8Array): string {
  return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('base64')
}

/**
 * Encode a body chunk as a binary frame (only after both sides negotiated it):
 * `[kind u8][rid length u8][rid utf8][payload]`. Saves the base64 and JSON work of `REQ_BODY` /
 * `RESP_BODY`.
 */
export function encodeBinaryBody(kind: number, rid: string, payload: Uint8Array): Buffer {
  const ridLength = Buffer.byteLength(rid)
  const out = Buffer.allocUnsafe(2 + ridLength + payload.byteLength)
  out[0] = kind
  out[1] = ridLength
  out.write(rid, 2, 'utf8')
  out.set(payload, 2 + ridLength)
  return out
}

/**
 * Body chunks from this size on go as a message of two WebSocket fragments (the frame's head, then
 * the chunk itself) when the chunk may be sent as it is ({@link BodyCodec.ownChunks}): no copy of
 * the payload into a frame buffer, no 64 KB allocation per frame.
 */
export const SPLIT_BODY_AT = 8 * 1024
const NO_BYTES = new Uint8Array(0)
/** Decode a binary body frame; `undefined` when malformed. */
export function decodeBinaryBody(data: Buffer): { kind: number; rid: string; payload: Buffer } | undefined {
  if (data.length < 2) return undefined
  const kind = data[0]!
  const ridLength = data[1]!
  if (ridLength === 0 || data.length < 2 + ridLength) return undefined
  if (kind !== BinaryKind.ReqBody && kind !== BinaryKind.RespBody) return undefined
  return { kind, rid: data.toString('utf8', 2, 2 + ridLength), payload: data.subarray(2 + ridLength) }
}

/**
 * A binary body frame that came as fragments (`binaryType: 'fragments'`): its head alone in the
 * first (as {@link sendBody} sends large chunks), so the payload is read without a copy.
 */
function decodeBinaryBodyParts(parts: Buffer[]): { kind: number; rid: string; payload: Buffer } | undefined {
  const head = parts[0]!
  if (parts.length !== 2 || head.length < 2 || head.length !== 2 + head[1]!)
    return decodeBinaryBody(rawToBuffer(parts))
  const frame = decodeBinaryBody(head)
  return frame && { ...frame, payload: parts[1]! }
}

/** Normalize ws message data to one Buffer. */
export function rawToBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Array.isArray(data)) return data.length === 1 ? data[0]! : Buffer.concat(data)
  if (data instanceof ArrayBuffer) return Buffer.from(data)
  return data
}

/** How one side writes bodies: request bodies (relay → agent) or response bodies (agent → relay). */
export interface BodyCodec {
  readonly direction: 'request' | 'response'
  /** Binary frames were negotiated in ATTACH / ATTACH_ACK. */
  readonly binary: boolean
  /**
   * Offered each chunk first: `true` when it took the chunk (merged into a headers frame not yet
   * sent), so {@link sendBody} sends nothing for it.
   */
  readonly merge?: (producer: BodyProducer, chunk: Buffer) => boolean
  /**
   * The chunks are this side's own (read off a socket, never reused after their write callback),
   * so binary frames may send them as they are (see {@link SPLIT_BODY_AT}).
   */
  readonly ownChunks?: boolean
}

/** Where body frames go: a WebSocket, or anything with its `send` and `bufferedAmount`. */
export interface FrameSink {
  /** Send one frame; `cb` runs once it is written (or at once when the socket is gone). */
  send(data: string | Buffer, cb?: () => void): void
  /** Send one binary message as two fragments, `payload` not copied (as `send` otherwise). */
  sendParts?(head: Buffer, payload: Uint8Array, cb?: () => void): void
  /** Bytes queued and not yet written. */
  readonly bufferedAmount: number
}

/** The request whose body is sent, and the producer of that body (paused while the sink is full). */
export interface BodyProducer {
  readonly rid: string
  /** Sent in `RESP_BODY` (the reference's field); request bodies carry none. */
  readonly leaseId: string
  pause(): void
  resume(): void
}

function bodyFrame(
  codec: BodyCodec,
  producer: BodyProducer,
  part: Uint8Array,
  binary: boolean,
): string | Buffer {
  if (codec.direction === 'request') {
    if (binary) return encodeBinaryBody(BinaryKind.ReqBody, producer.rid, part)
    return JSON.stringify({ type: 'REQ_BODY', rid: producer.rid, chunk_b64: toBase64(part) })
  }
  if (binary) return encodeBinaryBody(BinaryKind.RespBody, producer.rid, part)
  return JSON.stringify({
    type: 'RESP_BODY',
    lease_id: producer.leaseId,
    rid: producer.rid,
    chunk_b64: toBase64(part),
    eof: false,
  } satisfies AgentFrame)
}

/**
 * Send one body chunk as frames of at most {@link MAX_BODY_CHUNK_BYTES} payload each. When the
 * last frame would take the sink over `highWater` bytes, `producer.pause()` is called before it
 * goes out and `producer.resume()` once it is written.
 *
 * @returns `false` when the producer was paused.
 * @example
 * ```ts
 * sendBody(ws, { direction: 'response', binary: true }, request, chunk, 1024 * 1024)
 * ```
 */
export function sendBody(
  sink: FrameSink,
  codec: BodyCodec,
  producer: BodyProducer,
  chunk: Buffer,
  highWater: number,
): boolean {
  if (codec.merge?.(producer, chunk)) return true
  const rid = producer.rid
  // the binary header holds the rid's length in one byte; a longer rid falls back to JSON
  const binary = codec.binary && (rid.length <= 85 || Buffer.byteLength(rid) <= 255)
  const split = binary && codec.ownChunks === true && sink.sendParts !== undefined
  for (let offset = 0; ;) {
    const end = Math.min(offset + MAX_BODY_CHUNK_BYTES, chunk.length)
    const part = offset === 0 && end === chunk.length ? chunk : chunk.subarray(offset, end)
    offset = end
    const last = offset >= chunk.length
    if (split && part.length >= SPLIT_BODY_AT) {
      const kind = codec.direction === 'request' ? BinaryKind.ReqBody : BinaryKind.RespBody
      const head = encodeBinaryBody(kind, rid, NO_BYTES)
      if (!last || sink.bufferedAmount + head.length + part.length <= highWater) {
        sink.sendParts!(head, part)
        if (last) return true
        continue
      }
      producer.pause()
      sink.sendParts!(head, part, () => producer.resume())
      return false
    }
    const frame = bodyFrame(codec, producer, part, binary)
    if (!last || sink.bufferedAmount + frame.length <= highWater) {
      sink.send(frame)
      if (last) return true
      continue
    }
    producer.pause()
    sink.send(frame, () => producer.resume())
    return false
  }
}

/** A body chunk as read off the socket, whatever frame carried it. */
export interface BodyChunk {
  type: 'BODY'
  rid: string
  /** `undefined` when a text frame carried invalid base64. */
  chunk: Buffer | undefined
}

/**
 * What the relay reads from an agent: frames other than `RESP_BODY`, and body chunks. A binary
 * `RESP_HEADERS` may carry an inline body and the response's end.
 */
export type AgentMessage =
  | Exclude<AgentFrame, { type: 'RESP_BODY' | 'RESP_HEADERS' }>
  | (RespHeadersFrame & { inline?: Inline })
  | BodyChunk
/** What the agent reads from the relay: frames other than `REQ_BODY`, and body chunks (see {@link AgentMessage}). */
export type RelayMessage =
  | Exclude<RelayFrame, { type: 'REQ_BODY' | 'REQ_HEADERS' }>
  | (ReqHeadersFrame & { inline?: Inline })
  | BodyChunk

/** First byte of binary control frames (body frames use 1 and 2). */
const FIRST_CONTROL_KIND = 3

function binaryChunk(data: Buffer | Buffer[], kind: number): BodyChunk | undefined {
  const frame = Array.isArray(data) ? decodeBinaryBodyParts(data) : decodeBinaryBody(data)
  return frame?.kind === kind ? { type: 'BODY', rid: frame.rid, chunk: frame.payload } : undefined
}

/**
 * Read one WebSocket message from an agent. Binary body frames count only when negotiated
 * (`binary`), binary control frames only when `control` was.
 * @returns `undefined` for anything malformed or unexpected.
 * @example
 * ```ts
 * ws.on('message', (data, isBinary) => handle(readAgentMessage(data, isBinary, session.binary)))
 * ```
 */
export function readAgentMessage(
  data: Buffer | ArrayBuffer | Buffer[],
  isBinary: boolean,
  binary: boolean,
  control = false,
): AgentMessage | undefined {
  if (isBinary) {
    if (Array.isArray(data) && data.length > 1 && data[0]![0]! < FIRST_CONTROL_KIND)
      return binary ? binaryChunk(data, BinaryKind.RespBody) : undefined // a large body, fragmented
    const buf = rawToBuffer(data)
    if (control && buf.length > 0 && buf[0]! >= FIRST_CONTROL_KIND) return decodeAgentControl(buf)
    return binary ? binaryChunk(buf, BinaryKind.RespBody) : undefined
  }
  const frame = parseAgentFrame(rawToBuffer(data).toString('utf8'))
  if (frame?.type !== 'RESP_BODY') return frame
  return { type: 'BODY', rid: frame.rid, chunk: decodeBase64(frame.chunk_b64) }
}

/**
 * Read one WebSocket message from the relay (see {@link readAgentMessage}).
 * @returns `undefined` for anything malformed or unexpected.
 * @example
 * ```ts
 * ws.on('message', (data, isBinary) => handle(readRelayMessage(data, isBinary, conn.binary)))
 * ```
 */
export function readRelayMessage(
  data: Buffer | ArrayBuffer | Buffer[],
  isBinary: boolean,
  binary: boolean,
  control = false,
): RelayMessage | undefined {
  if (isBinary) {
    if (Array.isArray(data) && data.length > 1 && data[0]![0]! < FIRST_CONTROL_KIND)
      return binary ? binaryChunk(data, BinaryKind.ReqBody) : undefined // a large body, fragmented
    const buf = rawToBuffer(data)
    if (control && buf.length > 0 && buf[0]! >= FIRST_CONTROL_KIND) return decodeRelayControl(buf)
    return binary ? binaryChunk(buf, BinaryKind.ReqBody) : undefined
  }
  const frame = parseRelayFrame(rawToBuffer(data).toString('utf8'))
  if (frame?.type !== 'REQ_BODY') return frame
  return { type: 'BODY', rid: frame.rid, chunk: decodeBase64(frame.chunk_b64) }
}
