/* eslint-disable @typescript-eslint/no-explicit-any -- wire frames are untyped JSON in these tests */
import { Readable } from 'node:stream'
import { once } from 'node:events'
import { request as httpRequest } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { Agent, request } from 'undici'
import WebSocket from 'ws'
import { describe, expect, onTestFinished, test } from 'vitest'
import { deferred } from '@taskapp/test-utils'
import { readBody, startStack, within, waitForFrame } from './test-helpers'
import { createMemoryLeaseStore, createRelayServer, relayOptionsFromEnv } from './relay/index'
import { SynthTunnelErrorCode } from './errors'

function client() {
  const dispatcher = new Agent({ connections: 64 })
  onTestFinished(() => dispatcher.close())
  return dispatcher
}

/** A raw caller that takes its response head and never reads the body (destroyed when the test ends). */
async function stalledCaller(
  url: string,
  headers: Readonly<Record<string, string>>,
): Promise<IncomingMessage> {
  const req = httpRequest(new URL(url), { headers })
  const head = deferred<IncomingMessage>()
  req.on('response', (r) => {
    r.pause()
    head.resolve(r)
  })
  req.on('error', () => {})
  req.end()
  const response = await head.promise
  response.on('error', () => {})
  onTestFinished(() => void response.destroy())
  return response
}

async function createLease(relayUrl: string, apiKey: string, dispatcher: Agent) {
  const res = await request(`${relayUrl}/api/v1/synthtunnel/leases`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ client_instance_id: 'test-client', local_target: { host: '127.0.0.1', port: 1 } }),
    dispatcher,
  })
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, any> }
}

/** Status of a WebSocket upgrade to the relay's agent endpoint (101 when accepted). */
/** Leases a tunnel with key `k` and attaches a hand-driven agent; `frames` collects its text frames. */
async function attachRawAgent(relayUrl: string, dispatcher: Agent) {
  const lease = (await createLease(relayUrl, 'k', dispatcher)).body
  const ws = new WebSocket(lease.agent_connect.url as string, {
    headers: { authorization: `Bearer ${lease.agent_connect.agent_token as string}` },
  })
  onTestFinished(() => ws.terminate())
  const frames: Record<string, any>[] = []
  ws.on('message', (d: Buffer, isBinary) => {
    if (!isBinary) frames.push(JSON.parse(d.toString()) as Record<string, any>)
  })
  await once(ws, 'open')
  ws.send(JSON.stringify({ type: 'ATTACH', agent_id: 'a', leases: [{ lease_id: lease.lease_id }] }))
  await waitForFrame(frames, 'ATTACH_ACK')
  return { lease, ws, frames }
}

async function upgradeStatus(relayUrl: string, path: string, authorization?: string): Promise<number> {
  const ws = new WebSocket(`${relayUrl.replace(/^http/, 'ws')}${path}`, {
    headers: authorization === undefined ? {} : { authorization },
  })
  onTestFinished(() => ws.terminate())
  return await new Promise<number>((resolve, reject) => {
    ws.once('upgrade', (res) => resolve(res.statusCode ?? 0))
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
      res.resume()
    })
    ws.once('error', reject)
  })
}

test("the agent endpoint takes only a live lease's agent token: missing, wrong, API key → 401; other paths → 404", async () => {
  await using relay = await createRelayServer({ apiKeys: ['k'] })
  const lease = await createLease(relay.url, 'k', client())
  expect(lease.status).toBe(201)
  const agentToken = lease.body.agent_connect.agent_token as string
  const path = new URL(lease.body.agent_connect.url as string).pathname
  expect(await upgradeStatus(relay.url, path)).toBe(401)
  expect(await upgradeStatus(relay.url, path, `Bearer ${agentToken}x`)).toBe(401)
  expect(await upgradeStatus(relay.url, path, 'Bearer k')).toBe(401)
  expect(await upgradeStatus(relay.url, path, `Bearer ${lease.body.worker_token as string}`)).toBe(401)
  expect(await upgradeStatus(relay.url, '/elsewhere', `Bearer ${agentToken}`)).toBe(404)
  expect(await upgradeStatus(relay.url, path, `Bearer ${agentToken}`)).toBe(101)
})

test('a second agent attaching to the same lease replaces the first (close 4002), which keeps no requests', async () => {
  await using relay = await createRelayServer({ apiKeys: ['k'] })
  const lease = await createLease(relay.url, 'k', client())
  const attach = async () => {
    const ws = new WebSocket(lease.body.agent_connect.url as string, {
      headers: { authorization: `Bearer ${lease.body.agent_connect.agent_token as string}` },
    })
    onTestFinished(() => ws.terminate())
    const acked = new Promise<void>((resolve) =>
      ws.on('message', (d: Buffer) => {
        if ((JSON.parse(d.toString()) as { type: string }).type === 'ATTACH_ACK') resolve()
      }),
    )
    await once(ws, 'open')
    ws.send(JSON.stringify({ type: 'ATTACH', agent_id: 'a', leases: [{ lease_id: lease.body.lease_id }] }))
    await acked
    return ws
  }
  const first = await attach()
  const firstClosed = once(first, 'close') as Promise<[number, Buffer]>
  await attach()
  const [code] = await firstClosed
  expect(code).toBe(4002)
  expect(relay.stats().agents).toBe(1)
})

test('a lease store that fails while pruning is reported, with its error code, and the relay keeps serving', async () => {
  const warnings: Record<string, unknown>[] = []
  const logger = {
    debug() {},
    info() {},
    error() {},
    warn: (o: Record<string, unknown>, m?: string) => void warnings.push({ ...o, msg: m }),
  }
  const store = createMemoryLeaseStore()
  const failing = {
    ...store,
    deleteExpired: () =>
      Promise.reject(Object.assign(new Error('disk full'), { code: 'TASKAPP_ERR_SYNTH_RELAY_LEASE_FILE' })),
  }
  await using relay = await createRelayServer({
    apiKeys: ['k'],
    leaseStore: failing,
    leaseTtlSeconds: 1,
    logger,
  })
  await expect
    .poll(() => warnings.length, { timeout: 5_000, interval: 5, message: 'a warning about pruning' })
    .toBeGreaterThan(0)
  expect(warnings[0]).toMatchObject({
    msg: 'relay: pruning expired leases failed',
    code: 'TASKAPP_ERR_SYNTH_RELAY_LEASE_FILE',
    err: 'disk full',
  })
  expect((await createLease(relay.url, 'k', client())).status).toBe(201)
})

describe('lease REST API', () => {
  test('create returns the reference shape; tokens are unguessable and distinct; delete answers 204 then 404', async () => {
    await using relay = await createRelayServer({ apiKeys: ['k1'], leaseTtlSeconds: 120 })
    const dispatcher = client()
    const a = await createLease(relay.url, 'k1', dispatcher)
    const b = await createLease(relay.url, 'k1', dispatcher)
    expect(a.status).toBe(201)
    const lease = a.body
    expect(lease).toMatchObject({
      lease_id: expect.stringMatching(/^lease_[0-9a-f]{24}$/),
      route_token: expect.stringMatching(/^rt_[A-Za-z0-9_-]{32}$/),
      public_base_url: `${relay.url}/s`,
      agent_connect: {
        url: `${relay.url.replace('http', 'ws')}/api/v1/synthtunnel/agent`,
        agent_token: expect.stringMatching(/^at_/),
      },
      worker_token: expect.stringMatching(/^wt_[A-Za-z0-9_-]{32}$/),
      limits: { max_inflight: 128, max_response_bytes: 200_000_000, max_body_chunk_bytes: 65536 },
      heartbeat: {},
    })
    expect(lease.public_url).toBe(`${relay.url}/s/${lease.route_token}`)
    const ttl = Date.parse(lease.expires_at) - Date.now()
    expect(ttl).toBeGreaterThan(100_000)
    expect(ttl).toBeLessThanOrEqual(120_000)
    const secrets = [a.body, b.body].flatMap((l) => [
      l.route_token,
      l.worker_token,
      l.agent_connect.agent_token,
      l.lease_id,
    ])
    expect(new Set(secrets).size).toBe(8)

    const del = (key: string, id: string) =>
      request(`${relay.url}/api/v1/synthtunnel/leases/${id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${key}` },
        dispatcher,
      }).then(async (r) => (await r.body.dump(), r.statusCode))
    expect(await del('wrong', lease.lease_id)).toBe(401)
    expect(await del('k1', lease.lease_id)).toBe(204)
    expect(await del('k1', lease.lease_id)).toBe(404)
    // a deleted lease no longer routes
    const res = await request(`${lease.public_url}/health`, {
      headers: { 'x-synthtunnel-worker-token': lease.worker_token },
      dispatcher,
    })
    expect(res.statusCode).toBe(404)
    expect(await res.body.json()).toMatchObject({ code: 'TUNNEL_NOT_FOUND' })
  })

  test('a lease is refused without a valid key (401), a malformed body gets 400', async () => {
    await using relay = await createRelayServer({ apiKeys: ['k1', 'k2'] })
    const dispatcher = client()
    expect((await createLease(relay.url, 'nope', dispatcher)).status).toBe(401)
    expect((await createLease(relay.url, 'k2', dispatcher)).status).toBe(201)
    const res = await request(`${relay.url}/api/v1/synthtunnel/leases`, {
      method: 'POST',
      headers: { authorization: 'Bearer k1' },
      body: '[not json',
      dispatcher,
    })
    expect(res.statusCode).toBe(400)
    expect(await res.body.json()).toMatchObject({ error: { code: 'invalid_request' } })
  })

  test('without apiKeys the relay generates one key and exposes it as relay.apiKey', async () => {
    await using relay = await createRelayServer()
    expect(relay.apiKey).toMatch(/^rk_[A-Za-z0-9_-]{32}$/)
    expect((await createLease(relay.url, relay.apiKey, client())).status).toBe(201)
  })

  test('leases expire: the route stops working', async () => {
    await using relay = await createRelayServer({ apiKeys: ['k'], leaseTtlSeconds: 1 })
    const lease = (await createLease(relay.url, 'k', client())).body
    await expect
      .poll(
        async () => {
          const r = await request(`${lease.public_url}/x`, {
            headers: { authorization: `Bearer ${lease.worker_token}` },
            dispatcher: client(),
          })
          await r.body.dump()
          return r.statusCode
        },
        { timeout: 5_000, interval: 100, message: 'lease expiry' },
      )
      .toBe(404)
  })

  test('health route answers with counters', async () => {
    await using relay = await createRelayServer({ apiKeys: ['k'] })
    const res = await request(`${relay.url}/health`, { dispatcher: client() })
    expect(res.statusCode).toBe(200)
    expect(await res.body.json()).toEqual({ status: 'ok', agents: 0, inflight: 0 })
  })
})

describe('public traffic errors are problem+json with the reference codes', () => {
  test('no agent attached → 503 TUNNEL_AGENT_OFFLINE', async () => {
    await using relay = await createRelayServer({ apiKeys: ['k'] })
    const lease = (await createLease(relay.url, 'k', client())).body
    const res = await request(`${lease.public_url}/health`, {
      headers: { 'x-synthtunnel-worker-token': lease.worker_token },
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(503)
    expect(res.headers['content-type']).toBe('application/problem+json')
    expect(res.headers['retry-after']).toBe('1')
    expect(await res.body.json()).toMatchObject({ status: 503, code: 'TUNNEL_AGENT_OFFLINE' })
  })

  test.each([
    ['no token', {}, 'Worker token required', /^No worker token sent/],
    [
      'wrong worker token header',
      { 'x-synthtunnel-worker-token': 'wt_wrong' },
      'Worker token invalid',
      /sent in x-synthtunnel-worker-token does not match/,
    ],
    [
      'wrong bearer',
      { authorization: 'Bearer wt_wrong' },
      'Worker token invalid',
      /sent in Authorization: Bearer does not match/,
    ],
    ['agent token is not a worker token', 'agent', 'Worker token invalid', /does not match/],
  ])('%s → 401 TUNNEL_AUTH_REQUIRED titled %j', async (_name, headers, title, detail) => {
    let reached = false
    await using stack = await startStack((_req, res) => {
      reached = true
      res.end('x')
    })
    const h = headers === 'agent' ? { authorization: 'Bearer at_guess' } : headers
    const res = await request(`${stack.tunnel.url}/health`, { headers: h, dispatcher: client() })
    expect(res.statusCode).toBe(401)
    const body = (await res.body.json()) as Record<string, unknown>
    expect(body).toMatchObject({ status: 401, code: 'TUNNEL_AUTH_REQUIRED', title })
    expect(String(body.detail)).toMatch(detail)
    expect(String(body.detail)).toContain('x-synthtunnel-worker-token')
    expect(reached).toBe(false)
  })

  test('unknown route token → 404 TUNNEL_NOT_FOUND', async () => {
    await using stack = await startStack((_req, res) => res.end('x'))
    const res = await request(`${stack.relay.url}/s/rt_unknown/health`, {
      headers: stack.tunnel.headers,
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(404)
    expect(await res.body.json()).toMatchObject({ code: 'TUNNEL_NOT_FOUND' })
  })

  test('over the in-flight limit → 429 TUNNEL_CAPACITY_EXCEEDED with Retry-After', async () => {
    const release = deferred()
    let started = 0
    await using stack = await startStack(
      async (_req, res) => {
        started += 1
        await release.promise
        res.end('done')
      },
      { relay: { maxInflight: 2 } },
    )
    const dispatcher = client()
    const slow = [1, 2].map((i) =>
      request(`${stack.tunnel.url}/slow/${i}`, { headers: stack.tunnel.headers, dispatcher }),
    )
    await expect.poll(() => started, { timeout: 5_000, interval: 5, message: 'two handlers running' }).toBe(2)
    const res = await request(`${stack.tunnel.url}/third`, { headers: stack.tunnel.headers, dispatcher })
    expect(res.statusCode).toBe(429)
    expect(res.headers['retry-after']).toBe('1')
    expect(await res.body.json()).toMatchObject({ code: 'TUNNEL_CAPACITY_EXCEEDED' })
    release.resolve()
    for (const r of await Promise.all(slow)) expect(await r.body.text()).toBe('done')
  })

  test('over the memory budget → 429: a caller that does not read makes the relay stop reading the agent', async () => {
    const chunk = Buffer.alloc(64 * 1024, 7)
    let produced = 0
    await using stack = await startStack(
      async (req, res) => {
        if (req.url === '/small') return void res.end('small')
        res.writeHead(200)
        // write until the local socket pushes back; a relay that buffered would let this run to 64 MB
        while (produced < 64 * 1024 * 1024) {
          produced += chunk.length
          if (!res.write(chunk)) await once(res, 'drain')
        }
        res.end()
      },
      { relay: { memoryBudgetBytes: 64 * 1024, maxInflight: 4 } },
    )
    await stalledCaller(`${stack.tunnel.url}/big`, stack.tunnel.headers)
    // the producer stalls well below 64 MB because every hop applies backpressure
    await expect
      .poll(() => stack.relay.stats().memoryInUse, {
        timeout: 5_000,
        interval: 5,
        message: 'relay buffer reaches the budget',
      })
      .toBeGreaterThanOrEqual(64 * 1024)
    const before = produced
    const res = await request(`${stack.tunnel.url}/small`, {
      headers: stack.tunnel.headers,
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(429)
    expect(await res.body.json()).toMatchObject({ code: 'TUNNEL_CAPACITY_EXCEEDED' })
    expect(produced).toBeLessThan(32 * 1024 * 1024)
    expect(produced - before).toBeLessThan(16 * 1024 * 1024)
    // the relay holds at most the budget plus one frame per request in flight
    expect(stack.relay.stats().peakMemoryInUse).toBeLessThan(64 * 1024 + 4 * 128 * 1024)
  })

  test('deadline → 504 TUNNEL_TIMEOUT, and the local request is aborted', async () => {
    const aborted = deferred()
    await using stack = await startStack(
      (_req, res) => {
        res.on('close', () => aborted.resolve())
      },
      { relay: { defaultDeadlineMs: 300 } },
    )
    const res = await request(`${stack.tunnel.url}/hang`, {
      headers: stack.tunnel.headers,
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(504)
    expect(await res.body.json()).toMatchObject({ code: 'TUNNEL_TIMEOUT' })
    await aborted.promise
  })

  test('too large: declared Content-Length → 413; streamed chunked body → 413', async () => {
    let reached = 0
    await using stack = await startStack(
      async (req, res) => {
        reached += 1
        await readBody(req).catch(() => {})
        res.end('x')
      },
      { relay: { maxRequestBytes: 100_000 } },
    )
    const dispatcher = client()
    const big = await request(`${stack.tunnel.url}/upload`, {
      method: 'POST',
      headers: stack.tunnel.headers,
      body: Buffer.alloc(200_000),
      dispatcher,
    })
    expect(big.statusCode).toBe(413)
    expect(await big.body.json()).toMatchObject({ code: 'TUNNEL_PAYLOAD_TOO_LARGE' })
    expect(reached).toBe(0)
    async function* gen() {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(50_000, i)
    }
    const chunked = await request(`${stack.tunnel.url}/upload`, {
      method: 'POST',
      headers: stack.tunnel.headers,
      body: Readable.from(gen()),
      dispatcher,
    })
    expect(chunked.statusCode).toBe(413)
    expect(await chunked.body.json()).toMatchObject({ code: 'TUNNEL_PAYLOAD_TOO_LARGE' })
  })

  test('local server down → 502 TUNNEL_UPSTREAM_ERROR carrying LOCAL_CONNECT_FAILED', async () => {
    await using stack = await startStack((_req, res) => res.end('x'))
    await stack.local.close()
    const res = await request(`${stack.tunnel.url}/x`, {
      headers: stack.tunnel.headers,
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(502)
    const body = (await res.body.json()) as Record<string, unknown>
    expect(body).toMatchObject({ code: 'TUNNEL_UPSTREAM_ERROR' })
    expect(String(body.detail)).toContain('LOCAL_CONNECT_FAILED')
  })

  test('a response over the agent cap is cut off (LOCAL_BAD_RESPONSE) instead of forwarded', async () => {
    await using stack = await startStack((_req, res) => res.end(Buffer.alloc(300_000)), {
      agent: { maxResponseBytes: 100_000 },
    })
    // the relay resets the caller's connection: the full body never arrives
    const read = request(`${stack.tunnel.url}/big`, {
      headers: stack.tunnel.headers,
      dispatcher: client(),
    }).then((res) => res.body.arrayBuffer())
    await expect(read).rejects.toThrow()
  })
})

describe('relayOptionsFromEnv', () => {
  test('reads port, host, keys, public URL and limits', () => {
    expect(
      relayOptionsFromEnv({
        TASKAPP_RELAY_PORT: '8700',
        TASKAPP_RELAY_HOST: '0.0.0.0',
        TASKAPP_RELAY_API_KEYS: 'a, b,,c',
        TASKAPP_RELAY_PUBLIC_BASE_URL: 'https://relay.example.com',
        TASKAPP_RELAY_MAX_INFLIGHT: '64',
        TASKAPP_RELAY_MEMORY_BUDGET_BYTES: '1048576',
        TASKAPP_RELAY_DEADLINE_MS: '1000',
      }),
    ).toEqual({
      port: 8700,
      host: '0.0.0.0',
      apiKeys: ['a', 'b', 'c'],
      publicBaseUrl: 'https://relay.example.com',
      maxInflight: 64,
      memoryBudgetBytes: 1048576,
      defaultDeadlineMs: 1000,
    })
    expect(relayOptionsFromEnv({ PORT: '9000' })).toEqual({ port: 9000 })
    expect(() => relayOptionsFromEnv({ TASKAPP_RELAY_PORT: 'abc' })).toThrow(
      expect.objectContaining({ code: SynthTunnelErrorCode.RelayInvalidOptions }),
    )
  })
})

describe('relay options and logs', () => {
  test.each([
    ['port busy', 'busy', SynthTunnelErrorCode.RelayListenFailed],
    ['negative maxInflight', { maxInflight: -1 }, SynthTunnelErrorCode.RelayInvalidOptions],
    ['port out of range', { port: 70_000 }, SynthTunnelErrorCode.RelayInvalidOptions],
    ['bad publicBaseUrl', { publicBaseUrl: 'ftp://x' }, SynthTunnelErrorCode.RelayInvalidOptions],
    ['empty API key', { apiKeys: [''] }, SynthTunnelErrorCode.RelayInvalidOptions],
  ] as const)('%s → %s', async (_name, options, code) => {
    let opts: Parameters<typeof createRelayServer>[0]
    if (options === 'busy') {
      const first = await createRelayServer({ apiKeys: ['k'] })
      onTestFinished(() => first.close())
      opts = { apiKeys: ['k'], port: first.port }
    } else {
      opts = options
    }
    await expect(createRelayServer(opts)).rejects.toMatchObject({ name: 'SynthTunnelError', code })
  })

  test('one DEBUG line per request, and no secret in any log line of relay or agent', async () => {
    const lines: string[] = []
    const logger = {
      debug: (o: object, m?: string) => void lines.push(`debug ${m} ${JSON.stringify(o)}`),
      info: (o: object, m?: string) => void lines.push(`info ${m} ${JSON.stringify(o)}`),
      warn: (o: object, m?: string) => void lines.push(`warn ${m} ${JSON.stringify(o)}`),
      error: (o: object, m?: string) => void lines.push(`error ${m} ${JSON.stringify(o)}`),
    }
    const stack = await startStack((_req, res) => res.end('ok'), {
      relay: { logger, apiKeys: ['relay-secret-key-123'] },
      agent: { logger, apiKey: 'relay-secret-key-123', localApiKeys: ['local-secret-key-456'] },
    })
    const { tunnel } = stack
    const res = await request(`${tunnel.url}/logged?x=1`, { headers: tunnel.headers, dispatcher: client() })
    expect(await res.body.text()).toBe('ok')
    await stack.close()
    // every DEBUG line of the relay is a request line, one per HTTP request it served: the lease
    // POST, the tunneled GET (with its rid and sizes) and the lease DELETE
    const relayDebug = lines.filter((l) => l.startsWith('debug relay'))
    expect(relayDebug.map((l) => /"method":"(\w+)","path":"([^"]*)"/.exec(l)?.slice(1))).toEqual([
      ['POST', '/api/v1/synthtunnel/leases'],
      ['GET', expect.stringMatching(/^\/s\/.+\/logged$/)],
      ['DELETE', expect.stringMatching(/^\/api\/v1\/synthtunnel\/leases\/lease_/)],
    ])
    expect(relayDebug[1]).toContain('"status":200')
    expect(relayDebug[1]).toMatch(/"rid":"r\d+","bytesIn":0,"bytesOut":2/)
    // the public URL (with its route token) is not a secret: it is useless without the worker token
    for (const secret of [tunnel.workerToken, 'relay-secret-key-123', 'local-secret-key-456']) {
      expect(lines.filter((l) => l.includes(secret))).toEqual([])
    }
  })
})

test('a caller that stops reading is dropped after stallTimeoutMs, and the agent serves others again', async () => {
  const chunk = Buffer.alloc(64 * 1024, 1)
  const bigCancelled = deferred()
  await using stack = await startStack(
    async (req, res) => {
      if (req.url === '/small') return void res.end('small')
      res.on('close', () => {
        if (!res.writableFinished) bigCancelled.resolve()
      })
      res.writeHead(200)
      for (let i = 0; i < 1024 && !res.destroyed; i++)
        if (!res.write(chunk)) await once(res, 'drain').catch(() => {})
      res.end()
    },
    { relay: { memoryBudgetBytes: 64 * 1024, maxInflight: 4, stallTimeoutMs: 300 } },
  )
  await stalledCaller(`${stack.tunnel.url}/big`, stack.tunnel.headers)
  // the relay gives up on the caller that never reads, and CANCEL stops the local handler
  await bigCancelled.promise
  await expect
    .poll(() => stack.relay.stats().inflight, {
      timeout: 5_000,
      interval: 5,
      message: 'stalled request dropped',
    })
    .toBe(0)
  const res = await request(`${stack.tunnel.url}/small`, {
    headers: stack.tunnel.headers,
    dispatcher: client(),
  })
  expect(res.statusCode).toBe(200)
  expect(await res.body.text()).toBe('small')
})

test('an agent that ends a response short of its Content-Length: the caller sees a reset at once, not a hang', async () => {
  await using relay = await createRelayServer({ apiKeys: ['k'] })
  const dispatcher = client()
  const { lease, ws, frames } = await attachRawAgent(relay.url, dispatcher)
  const headers = { 'x-synthtunnel-worker-token': lease.worker_token as string }
  const pending = request(`${lease.public_url as string}/short`, { headers, dispatcher })
    .then(async (r) => `${r.statusCode} ${await r.body.text()}`)
    .catch((err: Error) => `reset: ${err.message}`)
  const head = await waitForFrame(frames, 'REQ_HEADERS')
  const frame = (f: object) => ws.send(JSON.stringify({ lease_id: lease.lease_id, rid: head.rid, ...f }))
  frame({ type: 'RESP_HEADERS', status: 200, headers: [['content-length', '5']] })
  frame({ type: 'RESP_BODY', chunk_b64: Buffer.from('ab').toString('base64'), eof: false })
  frame({ type: 'RESP_END' })
  // Before the fix the relay ended the response short and the caller waited for the other 3 bytes
  // until the keep-alive timeout (5 s), then took the truncated body as a success.
  expect(await within(pending, 3_000, 'the short response')).toMatch(/^reset: /)
  expect(relay.stats().inflight).toBe(0)
})

test('the relay drops a caller-sent x-synth-relay before REQ_HEADERS (only the agent sets it)', async () => {
  await using relay = await createRelayServer({ apiKeys: ['k'] })
  const dispatcher = client()
  const { lease, ws, frames } = await attachRawAgent(relay.url, dispatcher)
  const headers = {
    'x-synthtunnel-worker-token': lease.worker_token as string,
    'x-synth-relay': '1',
    'x-custom': 'kept',
  }
  const pending = request(`${lease.public_url as string}/marker`, { headers, dispatcher }).then(
    async (r) => `${r.statusCode} ${await r.body.text()}`,
  )
  const head = await waitForFrame(frames, 'REQ_HEADERS')
  const names = (head.headers as [string, string][]).map(([name]) => name.toLowerCase())
  expect(names).toContain('x-custom')
  expect(names).not.toContain('x-synth-relay')
  expect(names).not.toContain('x-synthtunnel-worker-token')
  const frame = (f: object) => ws.send(JSON.stringify({ lease_id: lease.lease_id, rid: head.rid, ...f }))
  frame({ type: 'RESP_HEADERS', status: 200, headers: [] })
  frame({ type: 'RESP_END' })
  expect(await within(pending, 3_000, 'the response')).toBe('200 ')
})
