/* eslint-disable @typescript-eslint/no-explicit-any -- wire frames are untyped JSON in these tests */
import { Agent, request } from 'undici'
import { expect, onTestFinished, test } from 'vitest'
import { deferred } from '@taskapp/test-utils'
import { readBody, startLocalServer } from './test-helpers'
import { startReferenceAgent } from './fixtures/reference-peers'
import { createRelayServer } from './relay/index'

function client() {
  const dispatcher = new Agent()
  onTestFinished(() => dispatcher.close())
  return dispatcher
}

async function leaseFor(relayUrl: string) {
  const res = await request(`${relayUrl}/api/v1/synthtunnel/leases`, {
    method: 'POST',
    headers: { authorization: 'Bearer k' },
    body: JSON.stringify({
      client_instance_id: 'ref-agent-0001',
      local_target: { host: '127.0.0.1', port: 1 },
    }),
    dispatcher: client(),
  })
  return (await res.body.json()) as Record<string, any>
}

test('our relay with a minimal reference agent: ATTACH_ACK, REQ_* frames, 64 KiB base64 chunks, round trip', async () => {
  await using local = await startLocalServer(async (req, res) => {
    const body = await readBody(req)
    res.writeHead(202, { 'x-echo-len': String(body.length), 'content-type': 'application/octet-stream' })
    res.end(
      Buffer.concat([Buffer.from(`${req.method} ${req.url} ${String(req.headers['x-custom'])};`), body]),
    )
  })
  await using relay = await createRelayServer({ apiKeys: ['k'] })
  const lease = await leaseFor(relay.url)
  await using agent = await startReferenceAgent({
    connectUrl: lease.agent_connect.url,
    agentToken: lease.agent_connect.agent_token,
    leaseId: lease.lease_id,
    localPort: local.port,
  })
  expect(agent.ack).toMatchObject({ type: 'ATTACH_ACK', agent_id: 'ref-agent-0001' })
  const body = Buffer.alloc(150_000, 9)
  const res = await request(`${lease.public_url}/items/7?x=1&y=%20`, {
    method: 'PUT',
    headers: { 'x-synthtunnel-worker-token': lease.worker_token, 'x-custom': 'c1' },
    body,
    dispatcher: client(),
  })
  expect(res.statusCode).toBe(202)
  expect(res.headers['x-echo-len']).toBe('150000')
  const got = Buffer.from(await res.body.arrayBuffer())
  expect(got.subarray(0, 26).toString()).toBe('PUT /items/7?x=1&y=%20 c1;')
  expect(got.subarray(26).equals(body)).toBe(true)
  const head = agent.received.find((f) => f.type === 'REQ_HEADERS')!
  expect(head).toMatchObject({
    type: 'REQ_HEADERS',
    lease_id: lease.lease_id,
    method: 'PUT',
    path: '/items/7',
    query: 'x=1&y=%20',
    deadline_ms: 3_600_000, // the relay's default deadline (1 h, for rollouts)
  })
  // the relay never forwards the worker token or hop-by-hop headers
  const names = (head.headers as [string, string][]).map(([k]) => k.toLowerCase())
  expect(names).toContain('x-custom')
  expect(names).not.toContain('x-synthtunnel-worker-token')
  expect(names).not.toContain('connection')
  const chunks = agent.received.filter((f) => f.type === 'REQ_BODY')
  expect(chunks.length).toBe(3)
  for (const c of chunks) {
    expect(Buffer.from(c.chunk_b64, 'base64').length).toBeLessThanOrEqual(65536)
    expect(c.chunk_b64).toMatch(/^[A-Za-z0-9+/]*={0,2}$/)
  }
  expect(
    agent.received
      .filter((f) => f.rid === head.rid)
      .map((f) => f.type)
      .at(-1),
  ).toBe('REQ_END')
})

test('our relay sends CANCEL to a reference agent when the caller goes away', async () => {
  const started = deferred()
  await using local = await startLocalServer(() => started.resolve())
  await using relay = await createRelayServer({ apiKeys: ['k'] })
  const lease = await leaseFor(relay.url)
  await using agent = await startReferenceAgent({
    connectUrl: lease.agent_connect.url,
    agentToken: lease.agent_connect.agent_token,
    leaseId: lease.lease_id,
    localPort: local.port,
  })
  const controller = new AbortController()
  const pending = request(`${lease.public_url}/hang`, {
    headers: { authorization: `Bearer ${lease.worker_token}` },
    signal: controller.signal,
    dispatcher: client(),
  })
  await started.promise
  controller.abort()
  await expect(pending).rejects.toThrow()
  await expect
    .poll(() => agent.received.some((f) => f.type === 'CANCEL'), {
      timeout: 5_000,
      interval: 5,
      message: 'CANCEL frame',
    })
    .toBe(true)
})

test('an agent that drops mid-request → 502 TUNNEL_AGENT_DISCONNECTED', async () => {
  const started = deferred()
  await using local = await startLocalServer(() => started.resolve())
  await using relay = await createRelayServer({ apiKeys: ['k'] })
  const lease = await leaseFor(relay.url)
  const agent = await startReferenceAgent({
    connectUrl: lease.agent_connect.url,
    agentToken: lease.agent_connect.agent_token,
    leaseId: lease.lease_id,
    localPort: local.port,
  })
  const pending = request(`${lease.public_url}/hang`, {
    headers: { 'x-synthtunnel-worker-token': lease.worker_token },
    dispatcher: client(),
  })
  await started.promise
  agent.ws.terminate()
  const res = await pending
  expect(res.statusCode).toBe(502)
  expect(await res.body.json()).toMatchObject({ code: 'TUNNEL_AGENT_DISCONNECTED' })
})
