/* eslint-disable @typescript-eslint/no-explicit-any -- wire frames are untyped JSON in these tests */
/**
 * One tenant must not starve the others: in-flight shares per lease and per API key, and request
 * bodies that stall or trickle cut with 408. Real relay, real sockets; hand-driven agents over `ws`.
 */
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import { Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { Agent, request } from 'undici'
import WebSocket from 'ws'
import { describe, expect, onTestFinished, test } from 'vitest'
import { readBody, startStack, waitForFrame, within } from './test-helpers'
import { createRelayServer, relayOptionsFromEnv } from './relay/index'
import { SynthTunnelErrorCode } from './errors'

function client(connections = 64) {
  const dispatcher = new Agent({ connections })
  onTestFinished(() => dispatcher.destroy())
  return dispatcher
}

async function createLease(relayUrl: string, apiKey: string, dispatcher: Agent) {
  const res = await request(`${relayUrl}/api/v1/synthtunnel/leases`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ client_instance_id: 'fairness', local_target: { host: '127.0.0.1', port: 1 } }),
    dispatcher,
  })
  expect(res.statusCode).toBe(201)
  return (await res.body.json()) as Record<string, any>
}

/**
 * A lease of `apiKey` with a hand-driven agent. `answer`: it answers every request at once with
 * 200 `ok`; otherwise only when told (`answerPending`). `frames` collects the text frames it received.
 */
async function rawAgent(relayUrl: string, apiKey: string, answer: boolean, dispatcher: Agent) {
  const lease = await createLease(relayUrl, apiKey, dispatcher)
  const ws = new WebSocket(lease.agent_connect.url as string, {
    headers: { authorization: `Bearer ${lease.agent_connect.agent_token as string}` },
  })
  onTestFinished(() => ws.terminate())
  const frames: Record<string, any>[] = []
  const send = (f: object) => ws.send(JSON.stringify({ lease_id: lease.lease_id, ...f }))
  const pending: string[] = []
  const respond = (rid: string) => {
    send({ type: 'RESP_HEADERS', rid, status: 200, headers: [['content-type', 'text/plain']] })
    send({ type: 'RESP_BODY', rid, chunk_b64: Buffer.from('ok').toString('base64'), eof: false })
    send({ type: 'RESP_END', rid })
  }
  ws.on('message', (d: Buffer, isBinary) => {
    if (isBinary) return
    const frame = JSON.parse(d.toString()) as Record<string, any>
    frames.push(frame)
    if (frame.type !== 'REQ_HEADERS') return
    if (answer) respond(frame.rid as string)
    else pending.push(frame.rid as string)
  })
  /** Answer, with 200 `ok`, every request received so far and not answered yet. */
  const answerPending = () => pending.splice(0).forEach(respond)
  await once(ws, 'open')
  ws.send(JSON.stringify({ type: 'ATTACH', agent_id: 'a', leases: [{ lease_id: lease.lease_id }] }))
  await waitForFrame(frames, 'ATTACH_ACK')
  const url = lease.public_url as string
  const headers = { 'x-synthtunnel-worker-token': lease.worker_token as string }
  const get = (path = '/x') =>
    request(`${url}${path}`, { headers, dispatcher }).then(async (r) => ({
      status: r.statusCode,
      retryAfter: r.headers['retry-after'],
      body:
        r.headers['content-type'] === 'application/problem+json' ? await r.body.json() : await r.body.text(),
    }))
  return { lease, url, headers, frames, get, answerPending }
}

interface Answer {
  status: number
  headers: Record<string, unknown>
  body: Record<string, any>
}

/**
 * A caller that declares a large body, then sends `bytes` every `everyMs` until it is answered
 * (`everyMs: 0`: sends `bytes` once, then stalls). Resolves with the answer.
 */
function slowUpload(
  url: string,
  headers: Record<string, string>,
  everyMs: number,
  bytes = 1,
): Promise<Answer> {
  const req = httpRequest(new URL(url), {
    method: 'POST',
    agent: false,
    headers: { ...headers, 'content-length': '1000000' },
  })
  req.on('error', () => {})
  req.flushHeaders()
  const chunk = Buffer.alloc(bytes, 0x78)
  req.write(chunk)
  const timer = everyMs > 0 ? setInterval(() => req.write(chunk), everyMs) : undefined
  const stop = () => {
    clearInterval(timer)
    req.destroy()
  }
  onTestFinished(stop)
  return new Promise<Answer>((resolve) => {
    req.on('response', (res) => {
      clearInterval(timer)
      const parts: Buffer[] = []
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('error', () => {})
      res.on('end', () => {
        const text = Buffer.concat(parts).toString()
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : {} })
        stop()
      })
    })
  })
}

const settledCount = (list: readonly { settled: boolean }[]) => list.filter((p) => p.settled).length
function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: boolean } {
  const t = { promise, settled: false }
  void promise.then(
    () => (t.settled = true),
    () => (t.settled = true),
  )
  return t
}

describe('in-flight shares', () => {
  test('a caller trickling more uploads than its lease share: 429 beyond the share, 408 for the trickles, others still served', async () => {
    await using relay = await createRelayServer({
      apiKeys: ['attacker-key', 'victim-key'],
      maxInflight: 8,
      maxInflightPerLease: 3,
      maxInflightPerKey: 6,
      bodyIdleTimeoutMs: 5_000,
      bodyMinBytesPerSecond: 1024,
      bodyRateWindowMs: 1_500,
    })
    const dispatcher = client()
    const attacker = await rawAgent(relay.url, 'attacker-key', false, dispatcher)
    const victim = await rawAgent(relay.url, 'victim-key', true, dispatcher)
    // ten uploads declaring 1 MB and sending a byte every 100 ms, through the attacker's tunnel
    const uploads = Array.from({ length: 10 }, () =>
      track(slowUpload(`${attacker.url}/upload`, attacker.headers, 100)),
    )
    await expect
      .poll(() => relay.stats().inflight + settledCount(uploads), {
        timeout: 5_000,
        interval: 5,
        message: 'every upload admitted or refused',
      })
      .toBe(10)
    // before the fix: 8 uploads held the relay's 8 slots and the victim got 429 TUNNEL_CAPACITY_EXCEEDED
    const others = await Promise.all(Array.from({ length: 3 }, () => victim.get('/work')))
    expect(others.map((r) => r.status)).toEqual([200, 200, 200])
    expect(relay.stats().inflight).toBe(3)
    const refused = await Promise.all(uploads.filter((u) => u.settled).map((u) => u.promise))
    expect(refused).toHaveLength(7)
    for (const r of refused) {
      expect(r.status).toBe(429)
      expect(r.headers['retry-after']).toBe('1')
      expect(r.headers['content-type']).toBe('application/problem+json')
      expect(r.body).toMatchObject({ status: 429, code: 'TUNNEL_LEASE_IN_FLIGHT_LIMIT' })
      expect(String(r.body.detail)).toContain('maxInflightPerLease')
    }
    // the three admitted trickles are cut by the rate rule: 408, their slots freed, the agent told
    const held = uploads.filter((u) => !u.settled).map((u) => u.promise)
    const cut = await within(Promise.all(held), 5_000, 'the trickling uploads')
    for (const r of cut) {
      expect(r.status).toBe(408)
      expect(r.headers.connection).toBe('close')
      expect(r.body).toMatchObject({ status: 408, code: 'TUNNEL_REQUEST_BODY_TIMEOUT' })
      expect(String(r.body.detail)).toContain('bytes/s')
    }
    const rids = attacker.frames.filter((f) => f.type === 'REQ_HEADERS').map((f) => f.rid as string)
    expect(rids).toHaveLength(3)
    await expect
      .poll(() =>
        attacker.frames
          .filter((f) => f.type === 'CANCEL')
          .map((f) => f.rid as string)
          .sort(),
      )
      .toEqual([...rids].sort())
    expect(relay.stats()).toMatchObject({
      inflight: 0,
      rejected: { capacity: 0, leaseInflight: 7, keyInflight: 0, slowBody: 3 },
    })
    // the lease's share is whole again: three requests are admitted, the fourth is refused
    const again = Array.from({ length: 3 }, () => track(attacker.get('/again')))
    await expect.poll(() => relay.stats().inflight, { timeout: 5_000, interval: 5 }).toBe(3)
    const fourth = await attacker.get('/fourth')
    expect(fourth).toMatchObject({ status: 429, body: { code: 'TUNNEL_LEASE_IN_FLIGHT_LIMIT' } })
    expect(settledCount(again)).toBe(0)
  })

  test('a lease whose agent never answers, sent 140 requests with the default limits: another lease is still served', async () => {
    await using relay = await createRelayServer({ apiKeys: ['attacker-key', 'victim-key'] })
    const dispatcher = client(200)
    const attacker = await rawAgent(relay.url, 'attacker-key', false, dispatcher)
    const victim = await rawAgent(relay.url, 'victim-key', true, dispatcher)
    const flood = Array.from({ length: 140 }, (_, i) =>
      track(attacker.get(`/hang/${i}`).catch(() => undefined)),
    )
    await expect
      .poll(() => relay.stats().inflight + settledCount(flood), {
        timeout: 10_000,
        interval: 10,
        message: 'every request admitted or refused',
      })
      .toBe(140)
    // before the fix: the relay's 128 slots were all the silent lease's, the victim got 429
    const others = await Promise.all(Array.from({ length: 10 }, (_, i) => victim.get(`/ok/${i}`)))
    expect(others.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 200))
    expect(relay.stats().inflight).toBe(128)
    const refused = await Promise.all(flood.filter((f) => f.settled).map((f) => f.promise))
    expect(refused).toHaveLength(12)
    for (const r of refused)
      expect(r).toMatchObject({ status: 429, body: { code: 'TUNNEL_LEASE_IN_FLIGHT_LIMIT' } })
    expect(relay.stats().rejected).toMatchObject({ leaseInflight: 12, capacity: 0 })
    // the long default deadline (1 h, for rollouts) is what the agent is told
    const head = attacker.frames.find((f) => f.type === 'REQ_HEADERS')
    expect(head?.deadline_ms).toBe(3_600_000)
    expect(attacker.lease.limits.max_inflight).toBe(128)
  })

  test("one API key's leases together stop at its key share (429 TUNNEL_KEY_IN_FLIGHT_LIMIT); another key is still served", async () => {
    await using relay = await createRelayServer({
      apiKeys: ['attacker-key', 'victim-key'],
      maxInflight: 8,
      maxInflightPerLease: 3,
      maxInflightPerKey: 4,
    })
    const dispatcher = client()
    const first = await rawAgent(relay.url, 'attacker-key', false, dispatcher)
    const second = await rawAgent(relay.url, 'attacker-key', false, dispatcher)
    const victim = await rawAgent(relay.url, 'victim-key', true, dispatcher)
    const held = [1, 2, 3].map(() => track(first.get().catch(() => undefined)))
    await expect.poll(() => relay.stats().inflight, { timeout: 5_000, interval: 5 }).toBe(3)
    const more = [1, 2, 3].map(() => track(second.get().catch(() => undefined)))
    await expect
      .poll(() => relay.stats().inflight + settledCount(more), {
        timeout: 5_000,
        interval: 5,
        message: "the second lease's requests admitted or refused",
      })
      .toBe(6)
    // before the fix: six held of eight, and the victim's third concurrent request got 429
    const others = await Promise.all([1, 2, 3].map(() => victim.get()))
    expect(others.map((r) => r.status)).toEqual([200, 200, 200])
    const refused = await Promise.all(more.filter((m) => m.settled).map((m) => m.promise))
    expect(refused).toHaveLength(2)
    for (const r of refused) {
      expect(r).toMatchObject({ status: 429, retryAfter: '1', body: { code: 'TUNNEL_KEY_IN_FLIGHT_LIMIT' } })
      expect(String((r?.body as Record<string, unknown>).detail)).toContain('maxInflightPerKey')
    }
    expect(relay.stats()).toMatchObject({ inflight: 4, rejected: { keyInflight: 2, leaseInflight: 0 } })
    expect(settledCount(held)).toBe(0)
    // the first lease's three end: the key's share has room again, up to the second lease's own share
    first.answerPending()
    for (const r of await Promise.all(held.map((h) => h.promise))) expect(r?.status).toBe(200)
    const later = [1, 2].map(() => track(second.get().catch(() => undefined)))
    await expect.poll(() => relay.stats().inflight, { timeout: 5_000, interval: 5 }).toBe(3)
    expect(await second.get()).toMatchObject({ status: 429, body: { code: 'TUNNEL_LEASE_IN_FLIGHT_LIMIT' } })
    second.answerPending()
    await Promise.all(later.map((l) => l.promise))
    await expect.poll(() => relay.stats().inflight, { timeout: 5_000, interval: 5 }).toBe(0)
    expect(relay.stats().rejected).toEqual({ capacity: 0, leaseInflight: 1, keyInflight: 2, slowBody: 0 })
  })
})

describe('request body timing', () => {
  test('a body that stalls is answered 408 after bodyIdleTimeoutMs, cancelled toward the agent, its slot freed', async () => {
    await using relay = await createRelayServer({
      apiKeys: ['k'],
      bodyIdleTimeoutMs: 300,
      bodyMinBytesPerSecond: 0,
    })
    const dispatcher = client()
    const agent = await rawAgent(relay.url, 'k', false, dispatcher)
    // ten bytes of a declared megabyte, then nothing
    const answer = await within(
      slowUpload(`${agent.url}/upload`, agent.headers, 0, 10),
      5_000,
      'the stalled upload',
    )
    expect(answer.status).toBe(408)
    expect(answer.headers['content-type']).toBe('application/problem+json')
    expect(answer.headers.connection).toBe('close')
    expect(answer.body).toMatchObject({ status: 408, code: 'TUNNEL_REQUEST_BODY_TIMEOUT' })
    expect(String(answer.body.detail)).toContain('300 ms')
    const head = await waitForFrame(agent.frames, 'REQ_HEADERS')
    const cancel = await waitForFrame(agent.frames, 'CANCEL')
    expect(cancel.rid).toBe(head.rid)
    expect(relay.stats()).toMatchObject({ inflight: 0, rejected: { slowBody: 1 } })
  })

  test('a trickle (a byte every 100 ms) is cut by the rate rule; a steady upload passes', async () => {
    await using stack = await startStack(
      async (req, res) => {
        const body = await readBody(req)
        res.end(createHash('sha256').update(body).digest('hex'))
      },
      { relay: { bodyIdleTimeoutMs: 1_000, bodyMinBytesPerSecond: 1024, bodyRateWindowMs: 400 } },
    )
    const trickle = slowUpload(`${stack.tunnel.url}/trickle`, stack.tunnel.headers, 100)
    const body = randomBytes(20 * 8 * 1024)
    async function* steady() {
      // 8 KiB every 50 ms (≈ 160 KB/s) for about a second: three windows
      for (let i = 0; i < 20; i++) {
        yield body.subarray(i * 8192, (i + 1) * 8192)
        await delay(50)
      }
    }
    const upload = request(`${stack.tunnel.url}/steady`, {
      method: 'POST',
      headers: stack.tunnel.headers,
      body: Readable.from(steady()),
      dispatcher: client(),
    })
    const cut = await within(trickle, 5_000, 'the trickling upload')
    expect(cut.status).toBe(408)
    expect(cut.body).toMatchObject({ code: 'TUNNEL_REQUEST_BODY_TIMEOUT' })
    expect(String(cut.body.detail)).toMatch(/came at \d+ bytes\/s over 400 ms; the relay needs at least 1024/)
    const ok = await upload
    expect(ok.statusCode).toBe(200)
    expect(await ok.body.text()).toBe(createHash('sha256').update(body).digest('hex'))
    await expect.poll(() => stack.relay.stats().inflight, { timeout: 5_000, interval: 5 }).toBe(0)
    expect(stack.relay.stats().rejected.slowBody).toBe(1)
    // the agent dropped the cut request too (CANCEL): it holds nothing
    await expect.poll(() => stack.tunnel.stats().inflight, { timeout: 5_000, interval: 5 }).toBe(0)
  })

  test('a long-running response (seconds, well past every body timeout) is not cut; slots return to 0', async () => {
    const timing = { bodyIdleTimeoutMs: 100, bodyMinBytesPerSecond: 1024, bodyRateWindowMs: 100 }
    await using stack = await startStack(
      async (req, res) => {
        const body = await readBody(req)
        await delay(1_500) // the rollout works: fifteen idle periods and rate windows pass
        res.writeHead(200)
        for (let i = 0; i < 3; i++) {
          res.write(`part${i}:${body.length};`)
          await delay(150)
        }
        res.end()
      },
      { relay: timing },
    )
    const dispatcher = client()
    const [post, get] = await Promise.all([
      request(`${stack.tunnel.url}/rollout`, {
        method: 'POST',
        headers: stack.tunnel.headers,
        body: randomBytes(10_000),
        dispatcher,
      }),
      request(`${stack.tunnel.url}/rollout`, { headers: stack.tunnel.headers, dispatcher }),
    ])
    expect(post.statusCode).toBe(200)
    expect(await post.body.text()).toBe('part0:10000;part1:10000;part2:10000;')
    expect(get.statusCode).toBe(200)
    expect(await get.body.text()).toBe('part0:0;part1:0;part2:0;')
    await expect.poll(() => stack.relay.stats().inflight, { timeout: 5_000, interval: 5 }).toBe(0)
    expect(stack.relay.stats().rejected).toEqual({
      capacity: 0,
      leaseInflight: 0,
      keyInflight: 0,
      slowBody: 0,
    })
  })
})

describe('options', () => {
  test.each([
    [
      'maxInflightPerLease above maxInflight',
      { maxInflight: 8, maxInflightPerLease: 9 },
      'maxInflightPerLease (9) is above maxInflight (8)',
    ],
    ['maxInflightPerKey of 0', { maxInflightPerKey: 0 }, 'maxInflightPerKey must be a positive integer'],
    [
      'fractional maxInflightPerLease',
      { maxInflightPerLease: 1.5 },
      'maxInflightPerLease must be a positive integer',
    ],
    [
      'negative bodyIdleTimeoutMs',
      { bodyIdleTimeoutMs: -1 },
      'bodyIdleTimeoutMs must be a non-negative number',
    ],
    [
      'NaN bodyMinBytesPerSecond',
      { bodyMinBytesPerSecond: Number.NaN },
      'bodyMinBytesPerSecond must be a non-negative number',
    ],
    ['zero bodyRateWindowMs', { bodyRateWindowMs: 0 }, 'bodyRateWindowMs must be a positive number'],
  ] as const)('%s → TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS', async (_name, options, message) => {
    await expect(createRelayServer({ apiKeys: ['k'], ...options })).rejects.toMatchObject({
      code: SynthTunnelErrorCode.RelayInvalidOptions,
      message: expect.stringContaining(message) as unknown,
    })
  })

  test('shares default to at most maxInflight, and the lease tells the agent its share', async () => {
    await using relay = await createRelayServer({ apiKeys: ['k'], maxInflight: 16 })
    const lease = await createLease(relay.url, 'k', client())
    expect(lease.limits.max_inflight).toBe(16)
    await using shared = await createRelayServer({
      apiKeys: ['k'],
      maxInflightPerLease: 5,
      maxInflightPerKey: 4,
    })
    expect((await createLease(shared.url, 'k', client())).limits.max_inflight).toBe(4)
  })

  test('relayOptionsFromEnv reads the shares and the body timing', () => {
    expect(
      relayOptionsFromEnv({
        TASKAPP_RELAY_MAX_INFLIGHT_PER_LEASE: '16',
        TASKAPP_RELAY_MAX_INFLIGHT_PER_KEY: '48',
        TASKAPP_RELAY_BODY_IDLE_TIMEOUT_MS: '5000',
        TASKAPP_RELAY_BODY_MIN_BYTES_PER_SECOND: '0',
        TASKAPP_RELAY_BODY_RATE_WINDOW_MS: '20000',
      }),
    ).toEqual({
      maxInflightPerLease: 16,
      maxInflightPerKey: 48,
      bodyIdleTimeoutMs: 5000,
      bodyMinBytesPerSecond: 0,
      bodyRateWindowMs: 20000,
    })
  })
})
