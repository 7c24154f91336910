/* eslint-disable @typescript-eslint/no-explicit-any -- wire frames are untyped JSON in these tests */
import fc from 'fast-check'
import { Agent, request } from 'undici'
import { WebSocket } from 'ws'
import { describe, expect, onTestFinished, test } from 'vitest'
import { readBody, startLocalServer, within, waitForFrame } from './test-helpers'
import { startReferenceRelay } from './fixtures/reference-peers'
import {
  BINARY_FRAMES_CAPABILITY,
  BinaryKind,
  decodeBase64,
  decodeBinaryBody,
  encodeBinaryBody,
} from './protocol/codec'
import { BINARY_CONTROL_CAPABILITY, decodeRelayControl } from './protocol/control-frames'
import { RID, controlFrameArb } from './fixtures/control-frame-arb'
import { parseAgentFrame, parseAttachFrame, parseRelayFrame } from './protocol/frames'
import { createRelayServer } from './relay/index'
import { synthTunnel } from './synth-tunnel'
import type { Logger } from './types'

/** A logger that records error-level lines: a handler that threw shows up here. */
function recordingLogger(): Logger & { errors: unknown[] } {
  const errors: unknown[] = []
  return { errors, debug() {}, info() {}, warn() {}, error: (obj) => void errors.push(obj) }
}

const ridArb = fc.oneof(
  fc.constant(RID),
  fc.constant(RID),
  fc.string({ maxLength: 6 }),
  fc.integer(),
  fc.constant(null),
)
const headersArb = fc.oneof(
  fc.array(
    fc.tuple(
      fc.constantFrom('x-a', 'content-type', 'content-length', 'Set-Cookie', 'bad name', ''),
      // digits too, so a Content-Length that the body then misses comes up now and then
      fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('0', '3', '64')),
    ),
    { maxLength: 4 },
  ),
  fc.string({ maxLength: 8 }),
  fc.constant(null),
  fc.array(fc.anything(), { maxLength: 3 }),
)
const b64Arb = fc.oneof(fc.base64String({ maxLength: 64 }), fc.string({ maxLength: 16 }), fc.constant(''))

const agentFrameArb = fc.oneof(
  fc
    .record(
      {
        type: fc.constantFrom(
          'RESP_HEADERS',
          'RESP_BODY',
          'RESP_END',
          'RESP_ERROR',
          'ATTACH',
          'REQ_HEADERS',
          'NOPE',
        ),
        rid: ridArb,
        lease_id: fc.oneof(fc.string({ maxLength: 4 }), fc.integer()),
        status: fc.oneof(
          fc.integer({ min: -5, max: 1200 }),
          fc.constantFrom(200, 204, 304, 404),
          fc.string({ maxLength: 3 }),
        ),
        headers: headersArb,
        chunk_b64: b64Arb,
        code: fc.string({ maxLength: 8 }),
        message: fc.string({ maxLength: 8 }),
        eof: fc.boolean(),
      },
      { requiredKeys: ['type'] },
    )
    .map((f) => JSON.stringify(f)),
  fc.string({ maxLength: 30 }),
  fc.json({ maxDepth: 2 }),
)

const relayFrameArb = fc.oneof(
  fc
    .record(
      {
        type: fc.constantFrom(
          'REQ_HEADERS',
          'REQ_BODY',
          'REQ_END',
          'CANCEL',
          'ATTACH_ACK',
          'RESP_END',
          'NOPE',
        ),
        rid: fc.oneof(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 2 }), fc.constant(null)),
        lease_id: fc.string({ maxLength: 4 }),
        method: fc.oneof(
          fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', 'DELETE', 'CONNECT', 'g e t', ''),
          fc.integer(),
        ),
        path: fc.oneof(
          fc.constantFrom('/', '/echo', 'relative', '/a b', '//x', '/%zz'),
          fc.string({ maxLength: 6 }),
        ),
        query: fc.oneof(fc.constantFrom('', 'a=1', '?b=2'), fc.string({ maxLength: 6 })),
        headers: headersArb,
        deadline_ms: fc.oneof(
          fc.integer({ min: -10, max: 100_000 }),
          fc.double(),
          fc.string({ maxLength: 3 }),
        ),
        chunk_b64: b64Arb,
      },
      { requiredKeys: ['type'] },
    )
    .map((f) => JSON.stringify(f)),
  fc.string({ maxLength: 30 }),
  fc.json({ maxDepth: 2 }),
)

describe('parsers never throw', () => {
  test('on any string', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), agentFrameArb, relayFrameArb), (text) => {
        parseAgentFrame(text)
        parseRelayFrame(text)
        parseAttachFrame(text)
        decodeBase64(text)
      }),
      { numRuns: 2_000 },
    )
  })

  test('base64 is strict: only padded standard base64 decodes, and it round-trips', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const b64 = Buffer.from(bytes).toString('base64')
        expect(decodeBase64(b64)?.equals(Buffer.from(bytes))).toBe(true)
      }),
    )
    for (const bad of ['abc', 'a b=', '****', 'YQ', 'YQ=', '-_-_']) expect(decodeBase64(bad)).toBeUndefined()
  })
})

/** Binary frames as a hostile agent might send them: any kind, rid or length, truncated or not. */
const binaryFrameArb = fc.record({
  kind: fc.integer({ min: 0, max: 4 }),
  rid: fc.oneof(fc.constant(RID), fc.constant(RID), fc.string({ maxLength: 4 }), fc.constant('')),
  payload: fc.uint8Array({ maxLength: 64 }),
  cut: fc.option(fc.integer({ min: 0, max: 8 })),
})
function binaryFrame(f: { kind: number; rid: string; payload: Uint8Array; cut: number | null }, rid: string) {
  const id = Buffer.from(f.rid === RID ? rid : f.rid)
  const out = Buffer.concat([Buffer.from([f.kind, id.length]), id, f.payload])
  return f.cut === null ? out : out.subarray(0, f.cut)
}

describe('binary body frames', () => {
  test('decodeBinaryBody never throws and round-trips encodeBinaryBody', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        decodeBinaryBody(Buffer.from(bytes))
      }),
      { numRuns: 2_000 },
    )
    fc.assert(
      fc.property(
        fc.constantFrom(BinaryKind.ReqBody, BinaryKind.RespBody),
        fc.string({ minLength: 1, maxLength: 60 }),
        fc.uint8Array({ maxLength: 200 }),
        (kind, rid, payload) => {
          const decoded = decodeBinaryBody(encodeBinaryBody(kind, rid, payload))
          expect(decoded?.kind).toBe(kind)
          expect(decoded?.rid).toBe(rid)
          expect(decoded?.payload.equals(Buffer.from(payload))).toBe(true)
        },
      ),
    )
  })
})

describe('malformed and out-of-order frames never crash the relay', () => {
  // 60 fuzzed round trips: about a second on a quiet machine, but 20 s was seen with two full suites
  // and eight agents sharing 2 cores. Each step has its own 5 s bound (waitForFrame, within), so a
  // hang still fails by name; the whole test gets room for a loaded machine.
  test.each([
    ['reference frames', false, false],
    ['binary body frames negotiated', true, false],
    ['binary body and control frames negotiated', true, true],
  ])(
    'a hostile agent with requests in flight (%s)',
    async (_name, negotiated, control) => {
      const logger = recordingLogger()
      await using relay = await createRelayServer({ apiKeys: ['k'], logger, defaultDeadlineMs: 5_000 })
      const dispatcher = new Agent()
      onTestFinished(() => dispatcher.close())
      const leaseRes = await request(`${relay.url}/api/v1/synthtunnel/leases`, {
        method: 'POST',
        headers: { authorization: 'Bearer k' },
        body: '{}',
        dispatcher,
      })
      const lease = (await leaseRes.body.json()) as Record<string, any>
      const ws = new WebSocket(lease.agent_connect.url, {
        headers: { authorization: `Bearer ${lease.agent_connect.agent_token}` },
      })
      onTestFinished(() => ws.terminate())
      const frames: Record<string, any>[] = []
      ws.on('message', (d: Buffer, isBinary) => {
        if (!isBinary) frames.push(JSON.parse(d.toString()) as Record<string, any>)
        else if (control)
          frames.push((decodeRelayControl(d) ?? { type: 'UNREADABLE' }) as Record<string, any>)
      })
      await new Promise((r) => ws.once('open', r))
      ws.send(
        JSON.stringify({
          type: 'ATTACH',
          agent_id: 'fuzz',
          leases: [{ lease_id: lease.lease_id }],
          capabilities: {
            ...(negotiated ? { [BINARY_FRAMES_CAPABILITY]: true } : {}),
            ...(control ? { [BINARY_CONTROL_CAPABILITY]: true } : {}),
          },
        }),
      )
      const ack = await waitForFrame(frames, 'ATTACH_ACK')
      expect(ack.capabilities?.[BINARY_FRAMES_CAPABILITY] === true).toBe(negotiated)
      expect(ack.capabilities?.[BINARY_CONTROL_CAPABILITY] === true).toBe(control)
      const frameArb = control
        ? fc.oneof(agentFrameArb, binaryFrameArb, controlFrameArb, controlFrameArb)
        : fc.oneof(agentFrameArb, binaryFrameArb)

      await fc.assert(
        fc.asyncProperty(fc.array(frameArb, { maxLength: 12 }), fc.boolean(), async (sequence, binary) => {
          frames.length = 0
          const pending = request(`${lease.public_url}/fuzz?q=1`, {
            method: 'POST',
            headers: { 'x-synthtunnel-worker-token': lease.worker_token },
            body: 'payload',
            dispatcher,
          }).then(
            async (r) => {
              await r.body.dump().catch(() => {})
              return r.statusCode
            },
            () => 'reset' as const,
          )
          const head = await waitForFrame(frames, 'REQ_HEADERS')
          for (const f of sequence) {
            if (typeof f === 'string') ws.send(f.split(RID).join(head.rid as string), { binary })
            else if ('control' in f) ws.send(f.control(head.rid as string), { binary: true })
            else ws.send(binaryFrame(f, head.rid as string), { binary: true })
          }
          // settle the request whatever state the fuzz left it in
          ws.send(
            JSON.stringify({
              type: 'RESP_ERROR',
              lease_id: lease.lease_id,
              rid: head.rid,
              code: 'X',
              message: 'done',
            }),
          )
          const outcome = await within(pending, 5_000, 'fuzzed request')
          expect(outcome === 'reset' || (outcome >= 200 && outcome <= 999)).toBe(true)
        }),
        { numRuns: 60 },
      )
      expect(logger.errors).toEqual([])
      // the relay still works: health, and a clean round trip through the same agent socket
      const health = await request(`${relay.url}/health`, { dispatcher })
      expect(await health.body.json()).toMatchObject({ status: 'ok', agents: 1, inflight: 0 })
      frames.length = 0
      const ok = request(`${lease.public_url}/clean`, {
        headers: { authorization: `Bearer ${lease.worker_token}` },
        dispatcher,
      })
      const head = await waitForFrame(frames, 'REQ_HEADERS')
      ws.send(
        JSON.stringify({
          type: 'RESP_HEADERS',
          lease_id: lease.lease_id,
          rid: head.rid,
          status: 200,
          headers: [['x-z', '1']],
        }),
      )
      ws.send(
        JSON.stringify({
          type: 'RESP_BODY',
          lease_id: lease.lease_id,
          rid: head.rid,
          chunk_b64: Buffer.from('clean').toString('base64'),
          eof: false,
        }),
      )
      ws.send(JSON.stringify({ type: 'RESP_END', lease_id: lease.lease_id, rid: head.rid }))
      const res = await ok
      expect(res.statusCode).toBe(200)
      expect(await res.body.text()).toBe('clean')
    },
    90_000,
  )

  test('garbage instead of ATTACH closes that socket only', async () => {
    await using relay = await createRelayServer({ apiKeys: ['k'] })
    const dispatcher = new Agent()
    onTestFinished(() => dispatcher.close())
    const lease = (await (
      await request(`${relay.url}/api/v1/synthtunnel/leases`, {
        method: 'POST',
        headers: { authorization: 'Bearer k' },
        dispatcher,
      })
    ).body.json()) as Record<string, any>
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 20 }), fc.json({ maxDepth: 2 })), async (text) => {
        fc.pre(!text.includes('"ATTACH"'))
        const ws = new WebSocket(lease.agent_connect.url, {
          headers: { authorization: `Bearer ${lease.agent_connect.agent_token}` },
        })
        ws.on('error', () => {})
        await new Promise((r) => ws.once('open', r))
        const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)))
        ws.send(text)
        expect(await within(closed, 2_000, 'close')).toBe(4003)
      }),
      { numRuns: 25 },
    )
    const health = await request(`${relay.url}/health`, { dispatcher })
    expect(await health.body.json()).toMatchObject({ status: 'ok', agents: 0 })
  })
})

describe('malformed and out-of-order frames never crash the agent', () => {
  test('a hostile relay', async () => {
    const logger = recordingLogger()
    await using local = await startLocalServer(async (req, res) => {
      const body = await readBody(req)
      res.end(`${req.method} ${req.url} ${body.length}`)
    })
    await using ref = await startReferenceRelay()
    await using tunnel = await synthTunnel({ backendUrl: ref.url, apiKey: 'k', env: {}, logger }).open(
      local.target,
    )
    await fc.assert(
      fc.asyncProperty(fc.array(relayFrameArb, { maxLength: 15 }), fc.boolean(), async (sequence, binary) => {
        const ws = ref.socket()!
        for (const text of sequence) ws.send(text, { binary })
        for (const rid of ['a', 'b', 'c', '0', '1', '2']) ws.send(JSON.stringify({ type: 'CANCEL', rid }))
        // the agent still answers a clean request on the same connection
        const res = await within(
          ref.request({ method: 'POST', path: '/echo', query: 'z=1', body: Buffer.from('abc') }),
          5_000,
          'clean request',
        )
        expect(res.body.toString()).toBe('POST /echo?z=1 3')
      }),
      { numRuns: 60 },
    )
    expect(logger.errors).toEqual([])
    expect(tunnel.connected).toBe(true)
    expect(ref.attaches.length).toBe(1)
  })
})
