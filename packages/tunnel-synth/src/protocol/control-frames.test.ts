import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { controlFrameArb } from '../fixtures/control-frame-arb'
import { readAgentMessage, readRelayMessage } from './codec'
import {
  ControlKind,
  FLAG_END,
  decodeAgentControl,
  decodeRelayControl,
  encodeReqHeaders,
  encodeRespError,
  encodeRespHeaders,
  encodeRidFrame,
} from './control-frames'
import type { ReqHeadersFrame, RespHeadersFrame } from './frames'

const req: ReqHeadersFrame = {
  type: 'REQ_HEADERS',
  lease_id: 'lease_1',
  rid: '42',
  method: 'POST',
  path: '/items/ü',
  query: 'a=1&b=%20',
  headers: [
    ['content-type', 'application/json'],
    ['x-name', 'välue'],
  ],
  deadline_ms: 600_000,
}
const resp: RespHeadersFrame = {
  type: 'RESP_HEADERS',
  lease_id: 'lease_1',
  rid: '42',
  status: 201,
  headers: [['content-length', '5']],
}

/** Every frame kind, encoded; the malformed-input tests cut and corrupt these. */
function samples(): Buffer[] {
  return [
    encodeReqHeaders(req, Buffer.from('hello'), true)!,
    encodeReqHeaders(req)!,
    encodeRidFrame(ControlKind.ReqEnd, '42')!,
    encodeRidFrame(ControlKind.Cancel, '42')!,
    encodeRespHeaders(resp, Buffer.from('hello'), true)!,
    encodeRidFrame(ControlKind.RespEnd, '42', 'lease_1')!,
    encodeRespError({ type: 'RESP_ERROR', lease_id: 'lease_1', rid: '42', code: 'X', message: 'why' })!,
  ]
}

describe('round trips', () => {
  test('REQ_HEADERS with an inline body and its end, and without', () => {
    expect(decodeRelayControl(encodeReqHeaders(req, Buffer.from('hello'), true)!)).toEqual({
      ...req,
      inline: { body: Buffer.from('hello'), end: true },
    })
    expect(decodeRelayControl(encodeReqHeaders(req)!)).toEqual({
      ...req,
      inline: { body: undefined, end: false },
    })
  })

  test('REQ_END, CANCEL, RESP_END, RESP_ERROR', () => {
    expect(decodeRelayControl(encodeRidFrame(ControlKind.ReqEnd, 'r')!)).toEqual({
      type: 'REQ_END',
      rid: 'r',
    })
    expect(decodeRelayControl(encodeRidFrame(ControlKind.Cancel, 'r')!)).toEqual({ type: 'CANCEL', rid: 'r' })
    expect(decodeAgentControl(encodeRidFrame(ControlKind.RespEnd, 'r', 'l')!)).toEqual({
      type: 'RESP_END',
      lease_id: 'l',
      rid: 'r',
    })
    const error = { type: 'RESP_ERROR', lease_id: 'l', rid: 'r', code: 'LOCAL_X', message: 'm'.repeat(300) }
    expect(decodeAgentControl(encodeRespError(error as never)!)).toEqual(error)
  })

  test('RESP_HEADERS with an inline body that ends the response', () => {
    const frame = encodeRespHeaders(resp, Buffer.from('hello'), true)!
    expect(frame[1]! & FLAG_END).toBe(FLAG_END)
    expect(decodeAgentControl(frame)).toEqual({ ...resp, inline: { body: Buffer.from('hello'), end: true } })
  })

  test('any fields round-trip', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.array(fc.tuple(fc.string({ maxLength: 30 }), fc.string({ maxLength: 300 })), { maxLength: 20 }),
        fc.integer({ min: 200, max: 999 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.boolean(),
        (rid, headers, status, body, end) => {
          const frame = { ...resp, rid, headers, status }
          const got = decodeAgentControl(encodeRespHeaders(frame, body, end)!)
          expect(got).toEqual({
            ...frame,
            inline: { body: body.length ? Buffer.from(body) : undefined, end },
          })
        },
      ),
    )
  })
})

describe('fields too long for the binary layout → undefined (the sender uses JSON)', () => {
  test.each([
    ['a rid over 255 bytes', { ...req, rid: 'r'.repeat(256) }],
    ['a header name over 255 bytes', { ...req, headers: [['n'.repeat(256), 'v']] as [string, string][] }],
    [
      'a header value over 65535 bytes',
      { ...req, headers: [['n', 'v'.repeat(65_536)]] as [string, string][] },
    ],
    ['a path over 65535 bytes', { ...req, path: `/${'p'.repeat(65_535)}` }],
    ['headers beyond the scratch space', { ...req, headers: Array(40).fill(['n', 'é'.repeat(1000)]) }],
  ])('%s', (_name, frame) => {
    expect(encodeReqHeaders(frame)).toBeUndefined()
  })
})

describe('malformed → undefined, never a throw', () => {
  test('every truncation of every frame', () => {
    for (const frame of samples()) {
      const relayKinds = [ControlKind.ReqHeaders, ControlKind.ReqEnd, ControlKind.Cancel]
      const decode = relayKinds.includes(frame[0] as never) ? decodeRelayControl : decodeAgentControl
      // the headers frames end in their inline body: cutting into it is still a valid frame
      const bodyAt =
        frame.length - (frame[0] === ControlKind.ReqHeaders || frame[0] === ControlKind.RespHeaders ? 5 : 0)
      for (let cut = 0; cut < bodyAt; cut++) expect(decode(frame.subarray(0, cut))).toBeUndefined()
    }
  })

  test('wrong direction, unknown kind, empty rid, trailing bytes, bad status', () => {
    const [reqHead, , reqEnd, , respHead, respEnd] = samples()
    expect(decodeAgentControl(reqHead!)).toBeUndefined()
    expect(decodeRelayControl(respHead!)).toBeUndefined()
    expect(decodeRelayControl(Buffer.from([9, 0, 1, 0x61]))).toBeUndefined()
    expect(decodeRelayControl(encodeRidFrame(ControlKind.ReqEnd, '')!)).toBeUndefined()
    expect(decodeRelayControl(Buffer.concat([reqEnd!, Buffer.from([0])]))).toBeUndefined()
    expect(decodeAgentControl(Buffer.concat([respEnd!, Buffer.from([0])]))).toBeUndefined()
    expect(decodeAgentControl(encodeRespHeaders({ ...resp, status: 199 })!)).toBeUndefined()
    // a head length that ends inside a field, or past the last field, or past the frame
    for (const delta of [-1, 1, 1000]) {
      const copy = Buffer.from(respHead!)
      copy.writeUInt16BE(copy.readUInt16BE(2) + delta, 2)
      expect(decodeAgentControl(copy)).toBeUndefined()
    }
    expect(decodeAgentControl(encodeRespHeaders({ ...resp, status: 1000 })!)).toBeUndefined()
  })

  test('a REQ_HEADERS with a bad field is REQ_INVALID, as in JSON', () => {
    expect(decodeRelayControl(encodeReqHeaders({ ...req, method: 'G E T' })!)).toMatchObject({
      type: 'REQ_INVALID',
      rid: '42',
      reason: 'REQ_HEADERS has an invalid method',
    })
    expect(decodeRelayControl(encodeReqHeaders({ ...req, deadline_ms: 0 })!)).toMatchObject({
      type: 'REQ_INVALID',
    })
  })

  test('random bytes and corrupted frames', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b)),
          fc
            .tuple(fc.constantFrom(...samples()), fc.nat(), fc.integer({ min: 0, max: 255 }))
            .map(([frame, at, byte]) => {
              const copy = Buffer.from(frame)
              copy[at % copy.length] = byte
              return copy
            }),
        ),
        (data) => {
          decodeRelayControl(data)
          decodeAgentControl(data)
          readRelayMessage(data, true, true, true)
          readAgentMessage(data, true, true, true)
        },
      ),
      { numRuns: 3_000 },
    )
  })

  test('binary control frames are not read unless negotiated', () => {
    const [reqHead, , , , respHead] = samples()
    expect(readRelayMessage(reqHead!, true, true, false)).toBeUndefined()
    expect(readAgentMessage(respHead!, true, true, false)).toBeUndefined()
    expect(readRelayMessage(reqHead!, true, true, true)).toMatchObject({ type: 'REQ_HEADERS', rid: '42' })
    expect(readAgentMessage(respHead!, true, true, true)).toMatchObject({ type: 'RESP_HEADERS', rid: '42' })
  })
})

describe('binary control frames', () => {
  test('decoders never throw on random or corrupted input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), controlFrameArb, (bytes, f) => {
        for (const data of [Buffer.from(bytes), f.control('r1')]) {
          decodeAgentControl(data)
          decodeRelayControl(data)
        }
      }),
      { numRuns: 3_000 },
    )
  })
})
