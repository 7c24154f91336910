/* eslint-disable @typescript-eslint/no-explicit-any -- wire frames are untyped JSON in these tests */
/**
 * Negotiation of binary control frames (`taskapp_binary_control_frames`) with a real relay and a
 * real agent on 127.0.0.1: new ↔ new uses them (small messages in one frame, large bodies streamed,
 * JSON fallback for fields too long), and neither side sends one to a peer that did not accept them.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { Agent, request } from 'undici'
import { expect, onTestFinished, test, vi } from 'vitest'
import { WebSocket } from 'ws'
import { attachRawAgent } from './fixtures/raw-peers'
import { startReferenceRelay } from './fixtures/reference-peers'
import { readBody, startLocalServer, startStack } from './test-helpers'
import { synthTunnel } from './synth-tunnel'
import { createRelayServer } from './relay/index'
import type { Logger } from './types'
import { BINARY_FRAMES_CAPABILITY } from './protocol/codec'
import { BINARY_CONTROL_CAPABILITY, decodeRelayControl, encodeRespHeaders } from './protocol/control-frames'
import type { Inline } from './protocol/control-frames'
import type { ReqHeadersFrame } from './protocol/frames'

function client() {
  const dispatcher = new Agent()
  onTestFinished(() => dispatcher.close())
  return dispatcher
}

/** A logger keeping info lines (the attach lines say what was negotiated). */
function infoLogger(): Logger & { infos: { obj: Record<string, unknown>; msg?: string }[] } {
  const infos: { obj: Record<string, unknown>; msg?: string }[] = []
  return {
    infos,
    debug() {},
    warn() {},
    error() {},
    info: (obj: object, msg?: string) =>
      void infos.push({ obj: obj as Record<string, unknown>, ...(msg ? { msg } : {}) }),
  }
}

test('new relay ↔ new agent: negotiated; small, empty, large, streamed and over-long requests all round-trip', async () => {
  const relayLog = infoLogger()
  const agentLog = infoLogger()
  await using stack = await startStack(
    async (req, res) => {
      const body = await readBody(req)
      if (req.url === '/stream') {
        res.writeHead(200, { 'x-streamed': '1' })
        res.write('part1;')
        setImmediate(() => res.end('part2'))
        return
      }
      if (req.url === '/empty') return void res.writeHead(204).end()
      res.writeHead(200, { 'x-len': String(body.length), 'x-method': req.method! })
      res.end(Buffer.concat([body, body]))
    },
    { relay: { logger: relayLog }, agent: { logger: agentLog } },
  )
  expect(relayLog.infos.find((i) => i.msg === 'relay: agent attached')?.obj).toMatchObject({
    binary: true,
    control: true,
  })
  expect(agentLog.infos.find((i) => i.msg === 'synthtunnel: agent connected')?.obj).toMatchObject({
    control: true,
  })
  const { tunnel } = stack
  const dispatcher = client()
  const call = async (
    path: string,
    init: { method?: string; body?: Buffer; headers?: Record<string, string> },
  ) => {
    const res = await request(`${tunnel.url}${path}`, {
      method: (init.method ?? 'POST') as 'POST',
      headers: { ...tunnel.headers, ...init.headers },
      body: init.body ?? null,
      dispatcher,
    })
    return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
  }
  for (const size of [0, 1, 1000, 16 * 1024, 300_000]) {
    const body = randomBytes(size)
    const got = await call('/echo?x=1', { body })
    expect(got.status).toBe(200)
    expect(got.headers['x-len']).toBe(String(size))
    expect(got.body.equals(Buffer.concat([body, body]))).toBe(true)
  }
  expect(await call('/get', { method: 'GET' })).toMatchObject({ status: 200, body: Buffer.alloc(0) })
  expect((await call('/empty', { method: 'GET' })).status).toBe(204)
  expect((await call('/stream', { method: 'GET' })).body.toString()).toBe('part1;part2')
  // a header name over 255 bytes does not fit the binary layout: that REQ_HEADERS goes as JSON
  const long = await call('/long', { body: Buffer.from('abc'), headers: { [`x-${'n'.repeat(300)}`]: 'v' } })
  expect(long).toMatchObject({ status: 200, body: Buffer.from('abcabc') })
})

test('old agent (offers no control frames) ↔ new relay: the relay speaks JSON to it', async () => {
  await using relay = await createRelayServer({ apiKeys: ['k'] })
  const agent = await attachRawAgent(relay.url, 'k')
  expect(agent.frames.find((f) => f.type === 'ATTACH_ACK')?.capabilities).toBeUndefined()
  let binaryMessages = 0
  agent.ws.on('message', (_d, isBinary) => void (isBinary && (binaryMessages += 1)))
  const pending = request(`${agent.lease.public_url}/x?q=1`, {
    method: 'POST',
    headers: { 'x-synthtunnel-worker-token': agent.lease.worker_token },
    body: 'small body',
    dispatcher: client(),
  })
  const head = await agent.request()
  expect(head).toMatchObject({ type: 'REQ_HEADERS', method: 'POST', path: '/x', query: 'q=1' })
  await expect.poll(() => agent.frames.some((f) => f.type === 'REQ_END' && f.rid === head.rid)).toBe(true)
  const body = agent.frames.find((f) => f.type === 'REQ_BODY' && f.rid === head.rid)
  expect(Buffer.from(body!.chunk_b64, 'base64').toString()).toBe('small body')
  agent.send(head.rid, { type: 'RESP_HEADERS', status: 200, headers: [['x-a', '1']] })
  agent.send(head.rid, { type: 'RESP_BODY', chunk_b64: Buffer.from('ok').toString('base64'), eof: false })
  agent.send(head.rid, { type: 'RESP_END' })
  const res = await pending
  expect(res.statusCode).toBe(200)
  expect(await res.body.text()).toBe('ok')
  expect(binaryMessages).toBe(0)
})

test('new agent ↔ old relay (reference, echoes no capability): the agent speaks JSON to it', async () => {
  await using local = await startLocalServer(async (req, res) => {
    res.writeHead(200, { 'x-len': String((await readBody(req)).length) })
    res.end('pong')
  })
  await using ref = await startReferenceRelay()
  const agentLog = infoLogger()
  const tunnel = await synthTunnel({ backendUrl: ref.url, apiKey: 'k', env: {}, logger: agentLog }).open(
    local.target,
  )
  onTestFinished(() => tunnel.close())
  expect((ref.attaches[0] as any).capabilities.taskapp_binary_control_frames).toBe(true)
  expect(agentLog.infos.find((i) => i.msg === 'synthtunnel: agent connected')?.obj).toMatchObject({
    binary: false,
    control: false,
  })
  let binaryMessages = 0
  ref.socket()!.on('message', (_d, isBinary) => void (isBinary && (binaryMessages += 1)))
  const res = await ref.request({ method: 'POST', path: '/p', body: Buffer.from('hello') })
  expect(res).toMatchObject({ status: 200, body: Buffer.from('pong') })
  expect(res.headers).toContainEqual(['x-len', '5'])
  expect(binaryMessages).toBe(0)
})

test('a small request is one binary message to an agent that accepted, and a one-message response completes it', async () => {
  await using relay = await createRelayServer({ apiKeys: ['k'] })
  const lease = (await (
    await request(`${relay.url}/api/v1/synthtunnel/leases`, {
      method: 'POST',
      headers: { authorization: 'Bearer k' },
      body: '{}',
      dispatcher: client(),
    })
  ).body.json()) as Record<string, any>
  const ws = new WebSocket(lease.agent_connect.url, {
    headers: { authorization: `Bearer ${lease.agent_connect.agent_token}` },
  })
  onTestFinished(() => ws.terminate())
  const messages: { data: Buffer; isBinary: boolean }[] = []
  ws.on('message', (data: Buffer, isBinary) => void messages.push({ data, isBinary }))
  await once(ws, 'open')
  const caps = { [BINARY_FRAMES_CAPABILITY]: true, [BINARY_CONTROL_CAPABILITY]: true }
  ws.send(
    JSON.stringify({
      type: 'ATTACH',
      agent_id: 'raw',
      leases: [{ lease_id: lease.lease_id }],
      capabilities: caps,
    }),
  )
  await vi.waitFor(() => expect(messages).toHaveLength(1), { timeout: 5_000, interval: 5 })
  expect(JSON.parse(messages[0]!.data.toString()).capabilities).toEqual(caps)
  const pending = request(`${lease.public_url}/one?x=1`, {
    method: 'POST',
    headers: { 'x-synthtunnel-worker-token': lease.worker_token, 'x-custom': 'c' },
    body: 'small body',
    dispatcher: client(),
  })
  await vi.waitFor(() => expect(messages).toHaveLength(2), { timeout: 5_000, interval: 5 })
  expect(messages[1]!.isBinary).toBe(true)
  const head = decodeRelayControl(messages[1]!.data) as ReqHeadersFrame & { inline: Inline }
  expect(head).toMatchObject({ type: 'REQ_HEADERS', method: 'POST', path: '/one', query: 'x=1' })
  expect(head.headers).toContainEqual(['x-custom', 'c'])
  expect(head.inline.end).toBe(true)
  expect(head.inline.body?.toString()).toBe('small body')
  const response = {
    type: 'RESP_HEADERS',
    lease_id: lease.lease_id,
    rid: head.rid,
    status: 201,
    headers: [],
  } as const
  ws.send(encodeRespHeaders({ ...response, headers: [['content-length', '2']] }, Buffer.from('ok'), true)!)
  const res = await pending
  expect(res.statusCode).toBe(201)
  expect(await res.body.text()).toBe('ok')
  expect(messages).toHaveLength(2) // no REQ_END or anything else after the one message
  // the framing checks hold for a whole response too: a body short of or past its Content-Length is cut
  for (const [length, body] of [
    ['5', 'ok'],
    ['1', 'ok'],
  ] as const) {
    const next = request(`${lease.public_url}/bad`, {
      headers: { 'x-synthtunnel-worker-token': lease.worker_token },
      dispatcher: client(),
    }).then(
      async (r) => (await r.body.text(), r.statusCode),
      (err: Error) => err.message,
    )
    await vi.waitFor(() => expect(messages.length).toBeGreaterThan(2), { timeout: 5_000, interval: 5 })
    const { rid } = decodeRelayControl(messages.pop()!.data) as ReqHeadersFrame
    const headers: [string, string][] = [['content-length', length]]
    ws.send(encodeRespHeaders({ ...response, rid, headers }, Buffer.from(body), true)!)
    expect(await next).not.toBe(200)
  }
})
