import { expect, test } from 'vitest'
import {
  BinaryKind,
  SPLIT_BODY_AT,
  decodeBinaryBody,
  readAgentMessage,
  readRelayMessage,
  sendBody,
} from './codec'
import type { BodyCodec, BodyProducer, FrameSink } from './codec'
import { MAX_BODY_CHUNK_BYTES } from './frames'

/** A sink that records frames and write callbacks, with a settable queue size. */
function recordingSink(bufferedAmount = 0) {
  const frames: (string | Buffer)[] = []
  const callbacks: (() => void)[] = []
  const sink: FrameSink & { frames: typeof frames; callbacks: typeof callbacks } = {
    frames,
    callbacks,
    bufferedAmount,
    send(data, cb) {
      frames.push(data)
      if (cb) callbacks.push(cb)
    },
  }
  return sink
}

function producer(rid = 'r1'): BodyProducer & { events: string[] } {
  const events: string[] = []
  return {
    rid,
    leaseId: 'lease_1',
    events,
    pause: () => events.push('pause'),
    resume: () => events.push('resume'),
  }
}

const codecs: [string, BodyCodec][] = [
  ['request, JSON', { direction: 'request', binary: false }],
  ['request, binary', { direction: 'request', binary: true }],
  ['response, JSON', { direction: 'response', binary: false }],
  ['response, binary', { direction: 'response', binary: true }],
]

test.each(codecs)(
  '%s: a body is cut into frames of at most 64 KiB that read back to the same bytes',
  (_, codec) => {
    const body = Buffer.alloc(2 * MAX_BODY_CHUNK_BYTES + 10, 7)
    const sink = recordingSink()
    expect(sendBody(sink, codec, producer(), body, Infinity)).toBe(true)
    expect(sink.frames).toHaveLength(3)
    const read = codec.direction === 'request' ? readRelayMessage : readAgentMessage
    const chunks = sink.frames.map((f) => {
      const message = read(typeof f === 'string' ? Buffer.from(f) : f, typeof f !== 'string', codec.binary)
      expect(message).toMatchObject({ type: 'BODY', rid: 'r1' })
      return (message as { chunk: Buffer }).chunk
    })
    expect(chunks.map((c) => c.length)).toEqual([MAX_BODY_CHUNK_BYTES, MAX_BODY_CHUNK_BYTES, 10])
    expect(Buffer.concat(chunks).equals(body)).toBe(true)
    if (codec.direction === 'response' && !codec.binary) {
      expect(JSON.parse(sink.frames[0] as string)).toMatchObject({
        type: 'RESP_BODY',
        lease_id: 'lease_1',
        eof: false,
      })
    }
  },
)

test('over the high-water mark the producer is paused before the last frame and resumed once it is written', () => {
  const sink = recordingSink(1000)
  const p = producer()
  expect(sendBody(sink, { direction: 'response', binary: true }, p, Buffer.alloc(100), 1050)).toBe(false)
  expect(p.events).toEqual(['pause'])
  expect(sink.callbacks).toHaveLength(1)
  sink.callbacks[0]!()
  expect(p.events).toEqual(['pause', 'resume'])
})

test('a rid too long for the binary header falls back to JSON frames', () => {
  const sink = recordingSink()
  sendBody(
    sink,
    { direction: 'response', binary: true },
    producer('x'.repeat(300)),
    Buffer.from('a'),
    Infinity,
  )
  expect(typeof sink.frames[0]).toBe('string')
  sendBody(
    sink,
    { direction: 'response', binary: true },
    producer('y'.repeat(255)),
    Buffer.from('a'),
    Infinity,
  )
  expect(decodeBinaryBody(sink.frames[1] as Buffer)?.rid).toBe('y'.repeat(255))
})

test('binary frames count only when negotiated and only in their direction; bad base64 is reported as such', () => {
  const toAgent = Buffer.from([BinaryKind.ReqBody, 1, 0x61, 0x62])
  expect(readRelayMessage(toAgent, true, false)).toBeUndefined()
  expect(readRelayMessage(toAgent, true, true)).toMatchObject({ type: 'BODY', rid: 'a' })
  expect(readAgentMessage(toAgent, true, true)).toBeUndefined()
  const text = Buffer.from(JSON.stringify({ type: 'REQ_BODY', rid: 'a', chunk_b64: 'abc' }))
  expect(readRelayMessage(text, false, true)).toEqual({ type: 'BODY', rid: 'a', chunk: undefined })
  expect(readRelayMessage(Buffer.from('{"type":"REQ_END","rid":"a"}'), false, true)).toEqual({
    type: 'REQ_END',
    rid: 'a',
  })
})

test.each([
  ['request', readRelayMessage],
  ['response', readAgentMessage],
] as const)(
  '%s, binary, own chunks: large parts go as two fragments without a copy and read back as they were',
  (direction, read) => {
    const body = Buffer.alloc(MAX_BODY_CHUNK_BYTES + SPLIT_BODY_AT, 9)
    body[0] = 1
    const sink = recordingSink()
    const parts: { head: Buffer; payload: Uint8Array }[] = []
    sink.sendParts = (head, payload) => void parts.push({ head, payload })
    const codec: BodyCodec = { direction, binary: true, ownChunks: true }
    expect(sendBody(sink, codec, producer('r7'), body, Infinity)).toBe(true)
    expect(sink.frames).toHaveLength(0)
    expect(parts.map((p) => p.payload.length)).toEqual([MAX_BODY_CHUNK_BYTES, SPLIT_BODY_AT])
    expect(parts[0]!.payload.buffer).toBe(body.buffer) // the caller's bytes, not a copy
    const chunks = parts.map((p) => {
      const message = read([p.head, Buffer.from(p.payload)], true, true, true)
      expect(message).toMatchObject({ type: 'BODY', rid: 'r7' })
      return (message as { chunk: Buffer }).chunk
    })
    expect(Buffer.concat(chunks).equals(body)).toBe(true)
    // fragments cut elsewhere (another sender) read back too; a small part goes as one frame
    const whole = Buffer.concat([parts[0]!.head, parts[0]!.payload])
    const message = read([whole.subarray(0, 5), whole.subarray(5)], true, true, true)
    expect((message as { chunk: Buffer }).chunk.equals(body.subarray(0, MAX_BODY_CHUNK_BYTES))).toBe(true)
    expect(sendBody(sink, codec, producer('r7'), Buffer.alloc(SPLIT_BODY_AT - 1), Infinity)).toBe(true)
    expect(sink.frames).toHaveLength(1)
  },
)

test('own chunks over the high-water mark: the producer pauses until the last part is written', () => {
  const sink = recordingSink(1000)
  const callbacks: (() => void)[] = []
  sink.sendParts = (_head, _payload, cb) => void (cb && callbacks.push(cb))
  const p = producer()
  const codec: BodyCodec = { direction: 'response', binary: true, ownChunks: true }
  expect(sendBody(sink, codec, p, Buffer.alloc(2 * SPLIT_BODY_AT), 1000 + SPLIT_BODY_AT)).toBe(false)
  expect(p.events).toEqual(['pause'])
  callbacks[0]!()
  expect(p.events).toEqual(['pause', 'resume'])
})
