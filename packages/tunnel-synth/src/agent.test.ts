/* eslint-disable @typescript-eslint/no-explicit-any -- wire frames are untyped JSON in these tests */
import { getEventListeners } from 'node:events'
import { createServer } from 'node:http'
import { Agent, request } from 'undici'
import { describe, expect, onTestFinished, test } from 'vitest'
import { SynthTunnelError, SynthTunnelErrorCode } from './errors'
import { deferred } from '@taskapp/test-utils'
import { readBody, startLocalServer, within } from './test-helpers'
import { startReferenceRelay } from './fixtures/reference-peers'
import type { ReferenceRelayOptions } from './fixtures/reference-peers'
import { createMemoryLeaseStore, createRelayServer } from './relay/index'
import { zeroMaskSafe } from './agent/attach'
import type { SynthTunnelEvent } from './agent/agent'
import { synthTunnel } from './synth-tunnel'

function client() {
  const dispatcher = new Agent({ connections: 32 })
  onTestFinished(() => dispatcher.close())
  return dispatcher
}

async function closedPort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

describe('synthTunnel().open() errors carry stable codes', () => {
  const cases: [
    string,
    ReferenceRelayOptions | 'unreachable-backend' | 'unreachable-relay',
    SynthTunnelErrorCode,
  ][] = [
    ['lease refused (401)', { leaseStatus: 401 }, SynthTunnelErrorCode.LeaseRefused],
    ['lease refused (403)', { leaseStatus: 403 }, SynthTunnelErrorCode.LeaseRefused],
    ['usage limit (429)', { leaseStatus: 429 }, SynthTunnelErrorCode.UsageLimit],
    ['other HTTP error (500)', { leaseStatus: 500 }, SynthTunnelErrorCode.LeaseFailed],
    ['response is not JSON', { leaseBody: '<html>' }, SynthTunnelErrorCode.LeaseInvalid],
    ['response lacks worker_token', { leaseBody: '{"lease_id":"x"}' }, SynthTunnelErrorCode.LeaseInvalid],
    ['backend unreachable', 'unreachable-backend', SynthTunnelErrorCode.BackendUnreachable],
    ['relay unreachable', 'unreachable-relay', SynthTunnelErrorCode.RelayUnreachable],
    ['no ATTACH_ACK', { ack: 'none' }, SynthTunnelErrorCode.AttachTimeout],
    ['wrong answer to ATTACH', { ack: 'wrong' }, SynthTunnelErrorCode.AttachRejected],
    ['relay closes during ATTACH', { ack: 'close' }, SynthTunnelErrorCode.AttachRejected],
    ['upgrade refused (401)', { upgradeStatus: 401 }, SynthTunnelErrorCode.AttachRejected],
  ]
  test.each(cases)('%s', async (_name, setup, code) => {
    let backendUrl: string
    let deletes: string[] = []
    if (setup === 'unreachable-backend') {
      backendUrl = `http://127.0.0.1:${await closedPort()}`
    } else {
      const opts =
        setup === 'unreachable-relay'
          ? { agentConnectUrl: `ws://127.0.0.1:${await closedPort()}/agent` }
          : setup
      const ref = await startReferenceRelay(opts)
      onTestFinished(() => ref.close())
      backendUrl = ref.url
      deletes = ref.deletes
    }
    const err = await synthTunnel({ backendUrl, apiKey: 'k', attachTimeoutMs: 300, env: {} })
      .open({ localUrl: 'http://127.0.0.1:1', host: '127.0.0.1', port: 1 })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(err).toBeInstanceOf(SynthTunnelError)
    expect(err).toMatchObject({ name: 'SynthTunnelError', code })
    expect((err as Error).message.length).toBeGreaterThan(20)
    // a lease that was created is deleted again when attaching fails
    if (typeof setup === 'object' && setup.leaseStatus === undefined && setup.leaseBody === undefined) {
      expect(deletes).toEqual(['lease_ref_1'])
    }
  })

  test('missing API key → TASKAPP_ERR_SYNTH_API_KEY_MISSING; bad options → TASKAPP_ERR_SYNTH_INVALID_OPTIONS', async () => {
    await expect(
      synthTunnel({ backendUrl: 'http://127.0.0.1:1', env: {} }).open({
        localUrl: 'http://127.0.0.1:1',
        host: '127.0.0.1',
        port: 1,
      }),
    ).rejects.toMatchObject({ code: SynthTunnelErrorCode.ApiKeyMissing })
    expect(() => synthTunnel({ maxInflight: 0 })).toThrow(
      expect.objectContaining({ code: SynthTunnelErrorCode.InvalidOptions }),
    )
    expect(() => synthTunnel({ backendUrl: 'ftp://x' })).toThrow(
      expect.objectContaining({ code: SynthTunnelErrorCode.InvalidOptions }),
    )
    // A bad backend variable names itself; core's error is the cause.
    let caught: unknown
    try {
      synthTunnel({ env: { SYNTH_BACKEND_URL_OVERRIDE: 'prodd' } })
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(SynthTunnelError)
    expect(caught).toMatchObject({
      code: SynthTunnelErrorCode.InvalidOptions,
      message: expect.stringContaining(
        'SYNTH_BACKEND_URL_OVERRIDE must be local, dev, prod or an http(s) URL',
      ),
      cause: { name: 'CoreError', code: 'TASKAPP_ERR_INVALID_SYNTH_BACKEND_URL' },
    })
  })

  test("no backendUrl: the lease goes to SYNTH_BACKEND_URL_OVERRIDE, then SYNTH_BACKEND_URL; other tools' variables are ignored", async () => {
    await using local = await startLocalServer((_req, res) => res.end('reached through the env relay'))
    await using relay = await createRelayServer({ apiKeys: ['env-relay-key'] })
    const dead = `http://127.0.0.1:${await closedPort()}`
    const foreign = { BACKEND_BASE_URL: dead, NEXT_PUBLIC_API_URL: dead, TARGET_BACKEND_BASE_URL: dead }
    for (const env of [
      { ...foreign, SYNTH_BACKEND_URL_OVERRIDE: `${relay.url}/api/`, SYNTH_BACKEND_URL: dead },
      { ...foreign, SYNTH_BACKEND_URL_OVERRIDE: ' ', SYNTH_BACKEND_URL: relay.url },
    ]) {
      await using tunnel = await synthTunnel({
        env: { ...env, SYNTH_API_KEY: 'env-relay-key' },
        localApiKeys: [],
      }).open(local.target)
      expect(tunnel.url.startsWith(`${relay.url}/s/`)).toBe(true)
      const res = await request(`${tunnel.url}/`, { headers: tunnel.headers, dispatcher: client() })
      expect(await res.body.text()).toBe('reached through the env relay')
    }
  })

  test.each(['open', 'synthTunnel'] as const)(
    'a signal given to %s() aborts open(): it rejects with the reason and the lease is deleted',
    async (where) => {
      await using ref = await startReferenceRelay({ ack: 'none' })
      const controller = new AbortController()
      const reason = new Error('stop now')
      const backend = synthTunnel({
        backendUrl: ref.url,
        apiKey: 'k',
        env: {},
        ...(where === 'synthTunnel' && { signal: controller.signal }),
      })
      const pending = backend.open(
        { localUrl: 'http://127.0.0.1:1', host: '127.0.0.1', port: 1 },
        where === 'open' ? { signal: controller.signal } : undefined,
      )
      await expect
        .poll(() => ref.attaches.length, { timeout: 5_000, interval: 5, message: 'ATTACH sent' })
        .toBe(1)
      controller.abort(reason)
      await expect(pending).rejects.toBe(reason)
      await expect
        .poll(() => ref.deletes.length, { timeout: 5_000, interval: 5, message: 'lease deleted after abort' })
        .toBe(1)
    },
  )
})

describe('synthTunnel({ signal })', () => {
  test('closes open tunnels when it fires, and leaves no listener behind on close()', async () => {
    await using local = await startLocalServer((_req, res) => res.end('ok'))
    await using ref = await startReferenceRelay()
    const controller = new AbortController()
    const backend = synthTunnel({ backendUrl: ref.url, apiKey: 'k', env: {}, signal: controller.signal })
    const first = await backend.open(local.target)
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1)
    controller.abort()
    await within(first.closed, 5_000, 'the tunnel closed by the signal')
    expect(first.connected).toBe(false)
    expect(first.error).toBeUndefined()
    await expect
      .poll(() => ref.deletes.length, { timeout: 5_000, interval: 5, message: 'lease deleted' })
      .toBe(1)
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
    // a second backend whose tunnel closes normally unregisters too
    const other = new AbortController()
    const second = await synthTunnel({
      backendUrl: ref.url,
      apiKey: 'k',
      env: {},
      signal: other.signal,
    }).open(local.target)
    await second.close()
    await expect
      .poll(() => getEventListeners(other.signal, 'abort').length, {
        timeout: 5_000,
        interval: 5,
        message: 'listener removed',
      })
      .toBe(0)
    expect(() => synthTunnel({ signal: 'nope' as unknown as AbortSignal })).toThrow(
      expect.objectContaining({ code: SynthTunnelErrorCode.InvalidOptions }),
    )
  })
})

describe('agent against a minimal reference relay (compatibility)', () => {
  test('lease request, ATTACH, frames, header filtering and DELETE follow the reference', async () => {
    await using local = await startLocalServer(async (req, res) => {
      const body = await readBody(req)
      res.setHeader('set-cookie', ['a=1', 'b=2'])
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ url: req.url, headers: req.headers, body: body.toString() }))
    })
    await using ref = await startReferenceRelay()
    const tunnel = await synthTunnel({
      backendUrl: `${ref.url}/api`,
      apiKey: 'synth-key',
      localApiKeys: ['env-key'],
      clientInstanceId: 'client-0123456789',
      env: {},
    }).open(local.target)
    expect(tunnel.url).toBe(`${ref.url}/s/rt_reference`)
    expect(tunnel.headers).toEqual({ 'X-SynthTunnel-Worker-Token': 'worker-token-ref' })
    expect(ref.leaseRequests).toEqual([
      {
        auth: 'Bearer synth-key',
        body: {
          client_instance_id: 'client-0123456789',
          local_target: { host: '127.0.0.1', port: local.port },
          requested_ttl_seconds: 3600,
          metadata: {},
          capabilities: {},
        },
      },
    ])
    expect(ref.agentAuth).toEqual(['Bearer agent-token-ref'])
    expect(ref.attaches).toEqual([
      {
        type: 'ATTACH',
        agent_id: 'client-0123456789',
        leases: [{ lease_id: 'lease_ref_1', local_target: { host: '127.0.0.1', port: local.port } }],
        capabilities: {
          streaming: true,
          max_inflight: 128,
          max_body_chunk_bytes: 65536,
          supports_cancel: true,
          // our extensions: offered, and unused because this reference relay does not echo them
          taskapp_binary_body_frames: true,
          taskapp_binary_control_frames: true,
        },
      },
    ])
    const body = Buffer.alloc(200_000, 'x')
    const res = await ref.request({
      method: 'POST',
      path: '/probe',
      query: 'seed=1',
      headers: [
        ['Content-Type', 'text/plain'],
        ['Connection', 'keep-alive'],
        ['Authorization', 'Bearer worker-token-ref'],
        ['X-SynthTunnel-Worker-Token', 'worker-token-ref'],
        ['X-Forwarded-For', '1.2.3.4'],
        ['Content-Length', '200000'],
        ['X-Api-Key', 'caller'],
      ],
      body,
    })
    expect(res.status).toBe(200)
    const echoed = JSON.parse(res.body.toString()) as {
      url: string
      headers: Record<string, string>
      body: string
    }
    expect(echoed.url).toBe('/probe?seed=1')
    expect(echoed.body).toBe(body.toString())
    expect(echoed.headers['content-type']).toBe('text/plain')
    expect(echoed.headers['x-forwarded-for']).toBeUndefined()
    expect(echoed.headers['x-synthtunnel-worker-token']).toBeUndefined()
    expect(echoed.headers['x-api-key']).toBe('env-key')
    expect(echoed.headers.authorization).toBe('Bearer env-key')
    expect(echoed.headers['x-synthtunnel-lease-id']).toBe('lease_ref_1')
    expect(echoed.headers['x-forwarded-proto']).toBe('https')
    expect(res.headers.filter(([k]) => k === 'set-cookie')).toEqual([
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ])
    await tunnel.close()
    expect(ref.deletes).toEqual(['lease_ref_1'])
  })

  test('RESP_BODY frames carry at most 64 KiB, in padded base64, and end with RESP_END', async () => {
    const payload = Buffer.alloc(300_001, 3)
    await using local = await startLocalServer((_req, res) => res.end(payload))
    await using ref = await startReferenceRelay()
    await using _tunnel = await synthTunnel({ backendUrl: ref.url, apiKey: 'k', env: {} }).open(local.target)
    const seen: Record<string, any>[] = []
    ref.frames.on('frame', (f: Record<string, any>) => seen.push(f))
    const res = await ref.request({ path: '/big' })
    expect(res.body.equals(payload)).toBe(true)
    const bodies = seen.filter((f) => f.type === 'RESP_BODY')
    for (const f of bodies) {
      expect(Buffer.from(f.chunk_b64, 'base64').length).toBeLessThanOrEqual(65536)
      expect(f.chunk_b64.length % 4).toBe(0)
      expect(f).toMatchObject({ lease_id: 'lease_ref_1', eof: false })
    }
    expect(seen.map((f) => f.type).at(0)).toBe('RESP_HEADERS')
    expect(seen.map((f) => f.type).at(-1)).toBe('RESP_END')
  })

  test('reference error codes: LOCAL_CONNECT_FAILED, BAD_REQUEST_FRAME, and our AGENT_CAPACITY_EXCEEDED', async () => {
    const release = deferred()
    await using local = await startLocalServer(async (_req, res) => {
      await release.promise
      res.end('ok')
    })
    await using ref = await startReferenceRelay()
    await using _tunnel = await synthTunnel({
      backendUrl: ref.url,
      apiKey: 'k',
      env: {},
      maxInflight: 2,
    }).open(local.target)
    const errorOf = (rid: string) =>
      new Promise<Record<string, any>>((resolve) => {
        const on = (f: Record<string, any>) => {
          if (f.rid === rid && f.type === 'RESP_ERROR') {
            ref.frames.off('frame', on)
            resolve(f)
          }
        }
        ref.frames.on('frame', on)
      })
    // malformed base64
    const bad = errorOf('bad')
    ref.sendRaw(
      JSON.stringify({ type: 'REQ_HEADERS', lease_id: 'lease_ref_1', rid: 'bad', method: 'POST', path: '/' }),
    )
    ref.sendRaw(JSON.stringify({ type: 'REQ_BODY', rid: 'bad', chunk_b64: '***not base64***' }))
    expect(await bad).toMatchObject({ code: 'BAD_REQUEST_FRAME', lease_id: 'lease_ref_1' })
    // a REQ_HEADERS with a usable rid but unusable fields is refused at once, not left to time out
    for (const [rid, field, why] of [
      ['m', { method: 'GE T' }, 'method'],
      ['d', { deadline_ms: 'soon' }, 'deadline_ms'],
      ['h', { headers: 'x-a: 1' }, 'headers'],
    ] as const) {
      const refused = errorOf(rid)
      ref.sendRaw(JSON.stringify({ type: 'REQ_HEADERS', lease_id: 'lease_ref_1', rid, path: '/', ...field }))
      expect(await within(refused, 2_000, `RESP_ERROR for ${rid}`)).toMatchObject({
        code: 'BAD_REQUEST_FRAME',
        lease_id: 'lease_ref_1',
        message: expect.stringContaining(why),
      })
    }
    // capacity: two held, the third refused
    const held = [ref.request({ rid: 'h1', path: '/a' }), ref.request({ rid: 'h2', path: '/b' })]
    const third = errorOf('h3')
    await expect
      .poll(() => new Promise<number>((r) => local.server.getConnections((_e, n) => r(n))), {
        timeout: 5_000,
        interval: 5,
        message: 'two requests at the local server',
      })
      .toBeGreaterThanOrEqual(2)
    ref.sendRaw(JSON.stringify({ type: 'REQ_HEADERS', lease_id: 'lease_ref_1', rid: 'h3', path: '/c' }))
    expect(await third).toMatchObject({ code: 'AGENT_CAPACITY_EXCEEDED' })
    release.resolve()
    for (const r of await Promise.all(held)) expect(r.body.toString()).toBe('ok')
    // local server gone
    await local.close()
    const down = await ref.request({ path: '/x' })
    expect(down.error?.code).toBe('LOCAL_CONNECT_FAILED')
  })
})

test('the deadline_ms of a request is honoured: the local request is aborted and RESP_ERROR sent', async () => {
  const aborted = deferred()
  await using local = await startLocalServer((_req, res) => {
    res.on('close', () => aborted.resolve())
  })
  await using ref = await startReferenceRelay()
  await using _tunnel = await synthTunnel({ backendUrl: ref.url, apiKey: 'k', env: {} }).open(local.target)
  const error = new Promise<Record<string, any>>((resolve) =>
    ref.frames.on('frame', (f: Record<string, any>) => {
      if (f.rid === 'slow' && f.type === 'RESP_ERROR') resolve(f)
    }),
  )
  ref.sendRaw(
    JSON.stringify({
      type: 'REQ_HEADERS',
      lease_id: 'lease_ref_1',
      rid: 'slow',
      path: '/hang',
      deadline_ms: 200,
    }),
  )
  ref.sendRaw(JSON.stringify({ type: 'REQ_END', rid: 'slow' }))
  const frame = await within(error, 5_000, 'RESP_ERROR after the deadline')
  expect(frame).toMatchObject({
    code: 'LOCAL_CONNECT_FAILED',
    message: expect.stringContaining('deadline of 200 ms'),
  })
  await aborted.promise
})

describe('reconnect', () => {
  test('relay restarted while requests fly: they fail with 502 at once, the agent reconnects and new requests succeed', async () => {
    const leaseStore = createMemoryLeaseStore()
    let started = 0
    const hang = deferred()
    onTestFinished(() => hang.resolve())
    await using local = await startLocalServer(async (req, res) => {
      if (req.url === '/hang') {
        started += 1
        await hang.promise
      }
      res.end(`ok ${req.url}`)
    })
    const relay1 = await createRelayServer({ apiKeys: ['k'], leaseStore })
    const events: (SynthTunnelEvent & { at: number })[] = []
    await using tunnel = await synthTunnel({
      backendUrl: relay1.url,
      apiKey: 'k',
      env: {},
      onEvent: (e) => events.push({ ...e, at: performance.now() }),
    }).open(local.target)
    const dispatcher = client()
    const inflight = [1, 2, 3].map(() =>
      request(`${tunnel.url}/hang`, { headers: tunnel.headers, dispatcher }),
    )
    await expect
      .poll(() => started, { timeout: 5_000, interval: 5, message: 'three requests at the handler' })
      .toBe(3)
    const closedAt = performance.now()
    await relay1.close()
    const results = await within(Promise.all(inflight), 2_000, 'in-flight requests failing')
    for (const r of results) {
      expect(r.statusCode).toBe(502)
      expect(await r.body.json()).toMatchObject({ code: 'TUNNEL_RELAY_SHUTTING_DOWN' })
    }
    await using relay2 = await createRelayServer({ apiKeys: ['k'], leaseStore, port: relay1.port })
    const backAt = performance.now()
    await expect
      .poll(() => tunnel.connected, { timeout: 8_000, interval: 5, message: 'agent reconnected' })
      .toBe(true)
    const connectedAt = events.find((e) => e.type === 'connected' && e.connection === 2)!.at
    // default backoff 250, 500, 1000 ms: the agent is back at most one backoff step after the relay
    expect(connectedAt - backAt, 'ms from the relay listening again to the agent attached').toBeLessThan(
      1_500,
    )
    expect(connectedAt - closedAt, 'ms from the relay closing to the agent attached').toBeLessThan(3_000)
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['connected', 'disconnected', 'reconnecting']),
    )
    const res = await request(`${tunnel.url}/after`, { headers: tunnel.headers, dispatcher })
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('ok /after')
    expect(relay2.stats().agents).toBe(1)
  })

  test('a drop aborts in-flight local requests; backoff (with jitter) doubles to reconnectMaxMs and starts over after a good connection', async () => {
    const leaseStore = createMemoryLeaseStore()
    const started = deferred()
    const aborted = deferred()
    await using local = await startLocalServer((req, res) => {
      if (req.url !== '/hang') return void res.end('ok')
      res.on('close', () => {
        if (!res.writableFinished) aborted.resolve()
      })
      started.resolve() // and never answer
    })
    const relay1 = await createRelayServer({ apiKeys: ['k'], leaseStore })
    const delays: number[] = []
    await using tunnel = await synthTunnel({
      backendUrl: relay1.url,
      apiKey: 'k',
      env: {},
      reconnectInitialMs: 10,
      reconnectMaxMs: 80,
      onEvent: (e) => void (e.type === 'reconnecting' && delays.push(e.delayMs)),
    }).open(local.target)
    const dispatcher = client()
    const pending = request(`${tunnel.url}/hang`, { headers: tunnel.headers, dispatcher })
    await within(started.promise, 5_000, 'the request at the local handler')
    await relay1.close()
    expect((await pending).statusCode).toBe(502)
    await within(aborted.promise, 5_000, 'the local request aborted with its connection')
    await expect
      .poll(() => delays.length, { timeout: 5_000, interval: 5, message: 'six reconnect attempts' })
      .toBeGreaterThanOrEqual(6)
    // each delay is drawn between half and all of its ceiling (jitter); the ceilings double to the cap
    const ceilings = [10, 20, 40, 80, 80, 80]
    delays.slice(0, 6).forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(ceilings[i]! / 2)
      expect(d).toBeLessThanOrEqual(ceilings[i]!)
    })
    const relay2 = await createRelayServer({ apiKeys: ['k'], leaseStore, port: relay1.port })
    await expect
      .poll(() => tunnel.connected, { timeout: 5_000, interval: 5, message: 'agent reconnected' })
      .toBe(true)
    const res = await request(`${tunnel.url}/after`, { headers: tunnel.headers, dispatcher })
    expect(await res.body.text()).toBe('ok')
    const before = delays.length
    await relay2.close()
    await expect
      .poll(() => delays.length, {
        timeout: 5_000,
        interval: 5,
        message: 'a reconnect after the second drop',
      })
      .toBeGreaterThan(before)
    expect(delays[before]).toBeGreaterThanOrEqual(5)
    expect(delays[before]).toBeLessThanOrEqual(10) // the ceiling starts over
  })

  test('an abrupt drop (socket destroyed) is followed by a fresh ATTACH', async () => {
    await using local = await startLocalServer((_req, res) => res.end('ok'))
    await using ref = await startReferenceRelay()
    await using tunnel = await synthTunnel({
      backendUrl: ref.url,
      apiKey: 'k',
      env: {},
      reconnectInitialMs: 20,
    }).open(local.target)
    ref.socket()!.terminate()
    await expect
      .poll(() => ref.attaches.length, { timeout: 5_000, interval: 5, message: 'second ATTACH' })
      .toBe(2)
    await expect.poll(() => tunnel.connected, { timeout: 5_000, interval: 5 }).toBe(true)
    const res = await ref.request({ path: '/again' })
    expect(res.body.toString()).toBe('ok')
  })

  test('a dead relay (no pong) is detected by pings and the agent reconnects', async () => {
    await using local = await startLocalServer((_req, res) => res.end('ok'))
    await using ref = await startReferenceRelay()
    await using tunnel = await synthTunnel({
      backendUrl: ref.url,
      apiKey: 'k',
      env: {},
      pingIntervalMs: 100,
      reconnectInitialMs: 20,
    }).open(local.target)
    // freeze the relay side: its socket stops reading, so no pong comes back
    ;(ref.socket() as unknown as { _socket: { pause(): void } })._socket.pause()
    await expect
      .poll(() => ref.attaches.length, {
        timeout: 5_000,
        interval: 5,
        message: 're-ATTACH after missed pongs',
      })
      .toBe(2)
    await expect.poll(() => tunnel.connected, { timeout: 5_000, interval: 5 }).toBe(true)
  })

  test('closed settles when the lease is deleted for good, with TASKAPP_ERR_SYNTH_LEASE_GONE', async () => {
    await using local = await startLocalServer((_req, res) => res.end('ok'))
    await using relay = await createRelayServer({ apiKeys: ['k'] })
    await using tunnel = await synthTunnel({ backendUrl: relay.url, apiKey: 'k', env: {} }).open(local.target)
    const res = await request(`${relay.url}/api/v1/synthtunnel/leases/${tunnel.leaseId}`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer k' },
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(204)
    await within(tunnel.closed, 5_000, 'tunnel.closed')
    expect(tunnel.error?.code).toBe(SynthTunnelErrorCode.LeaseGone)
    expect(tunnel.connected).toBe(false)
  })

  test('closed settles when the relay expires the lease, with TASKAPP_ERR_SYNTH_LEASE_GONE', async () => {
    await using local = await startLocalServer((_req, res) => res.end('ok'))
    await using relay = await createRelayServer({ apiKeys: ['k'], leaseTtlSeconds: 1 })
    const events: SynthTunnelEvent[] = []
    await using tunnel = await synthTunnel({
      backendUrl: relay.url,
      apiKey: 'k',
      env: {},
      onEvent: (e) => void events.push(e),
    }).open(local.target)
    await within(tunnel.closed, 5_000, 'tunnel.closed after the lease expired')
    expect(tunnel.error?.code).toBe(SynthTunnelErrorCode.LeaseGone)
    expect(events).toContainEqual(expect.objectContaining({ type: 'disconnected', code: 4001 }))
    expect(events.some((e) => e.type === 'reconnecting')).toBe(false)
  })

  test('close() gives up on a DELETE that never answers after closeTimeoutMs, and says so', async () => {
    await using local = await startLocalServer((_req, res) => res.end('ok'))
    await using ref = await startReferenceRelay({ deleteHangs: true })
    const warnings: string[] = []
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn: (_o: object, m?: string) => void warnings.push(m ?? ''),
    }
    const tunnel = await synthTunnel({
      backendUrl: ref.url,
      apiKey: 'k',
      env: {},
      closeTimeoutMs: 200,
      logger,
    }).open(local.target)
    const t0 = performance.now()
    await within(tunnel.close(), 3_000, 'close() despite a hanging DELETE')
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150)
    expect(ref.deletes).toEqual(['lease_ref_1'])
    expect(warnings).toContain('synthtunnel: could not delete the lease')
  })

  test('closed settles on close(); close() is idempotent and deletes the lease', async () => {
    await using local = await startLocalServer((_req, res) => res.end('ok'))
    await using ref = await startReferenceRelay()
    const tunnel = await synthTunnel({ backendUrl: ref.url, apiKey: 'k', env: {} }).open(local.target)
    let settled = false
    void tunnel.closed.then(() => (settled = true))
    await Promise.all([tunnel.close(), tunnel.close()])
    await tunnel[Symbol.asyncDispose]()
    await within(tunnel.closed, 1_000, 'closed')
    expect(settled).toBe(true)
    expect(tunnel.error).toBeUndefined()
    expect(ref.deletes).toEqual(['lease_ref_1'])
  })
})

test.each([
  ['wss://relay.example.com/api/v1/synthtunnel/agent', true],
  ['ws://127.0.0.1:8700/api/v1/synthtunnel/agent', true],
  ['ws://127.5.0.1:8700/x', true],
  ['ws://localhost:8700/x', true],
  ['ws://[::1]:8700/x', true],
  ['ws://relay.example.com/x', false],
  ['ws://10.0.0.5:8700/x', false],
  ['not a url', false],
] as const)('client frames use an all-zero masking key only over TLS or loopback: %s → %s', (url, safe) => {
  expect(zeroMaskSafe(url)).toBe(safe)
})
