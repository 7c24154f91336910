import { expect, test } from 'vitest'
import type { FrameSink } from '../protocol/codec'
import { MAX_INLINE_BODY_BYTES, decodeAgentControl } from '../protocol/control-frames'
import type { RespHeadersFrame } from '../protocol/frames'
import { ResponseFrames } from './response-frames'

function recordingSink(): FrameSink & { frames: (string | Buffer)[] } {
  const frames: (string | Buffer)[] = []
  return { frames, bufferedAmount: 0, send: (data) => void frames.push(data) }
}

const head = (rid: string): RespHeadersFrame => ({
  type: 'RESP_HEADERS',
  lease_id: 'l',
  rid,
  status: 200,
  headers: [['content-type', 'text/plain']],
})
const decode = (f: string | Buffer) => (typeof f === 'string' ? JSON.parse(f) : decodeAgentControl(f))

test('head, small body and end leave as one message', () => {
  const sink = recordingSink()
  const out = new ResponseFrames(sink, true)
  out.send(head('1'))
  expect(out.merge('1', Buffer.from('ab'))).toBe(true)
  expect(out.merge('1', Buffer.from('cd'))).toBe(true)
  expect(sink.frames).toEqual([])
  out.send({ type: 'RESP_END', lease_id: 'l', rid: '1' })
  expect(sink.frames.map(decode)).toEqual([
    { ...head('1'), inline: { body: Buffer.from('abcd'), end: true } },
  ])
})

test('a body past the inline limit sends the head first, then goes as body frames', () => {
  const sink = recordingSink()
  const out = new ResponseFrames(sink, true)
  out.send(head('1'))
  expect(out.merge('1', Buffer.alloc(10))).toBe(true)
  expect(out.merge('1', Buffer.alloc(MAX_INLINE_BODY_BYTES))).toBe(false)
  out.send({ type: 'RESP_END', lease_id: 'l', rid: '1' })
  expect(sink.frames.map(decode)).toEqual([
    { ...head('1'), inline: { body: Buffer.alloc(10), end: false } },
    { type: 'RESP_END', lease_id: 'l', rid: '1' },
  ])
})

test('a head still held at the end of the turn is sent then; RESP_ERROR keeps the order', async () => {
  const sink = recordingSink()
  const out = new ResponseFrames(sink, true)
  out.send(head('1'))
  out.send(head('2'))
  out.send({ type: 'RESP_ERROR', lease_id: 'l', rid: '2', code: 'LOCAL_BAD_RESPONSE', message: 'x' })
  expect(sink.frames.map((f) => decode(f).rid)).toEqual(['2', '2'])
  await new Promise(setImmediate) // the turn ends: the held head goes out
  expect(sink.frames.map((f) => decode(f).type)).toEqual(['RESP_HEADERS', 'RESP_ERROR', 'RESP_HEADERS'])
})

test('without control frames everything is JSON, sent at once', () => {
  const sink = recordingSink()
  const out = new ResponseFrames(sink, false)
  out.send(head('1'))
  expect(out.merge('1', Buffer.from('ab'))).toBe(false)
  out.send({ type: 'RESP_END', lease_id: 'l', rid: '1' })
  expect(sink.frames).toEqual([
    JSON.stringify(head('1')),
    JSON.stringify({ type: 'RESP_END', lease_id: 'l', rid: '1' }),
  ])
})

test('clear() forgets held heads: nothing is sent for a closed connection', async () => {
  const sink = recordingSink()
  const out = new ResponseFrames(sink, true)
  out.send(head('1'))
  out.clear()
  await new Promise(setImmediate)
  expect(sink.frames).toEqual([])
})
