/**
 * The relay's operating surface against a real relay, a real agent and a real local server on
 * 127.0.0.1: metrics that move after real requests, livez/readyz, the admin key (header, cookie,
 * never the URL), the admin port, and no secret in the status page or its JSON.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { WebSocket } from 'ws'
import { createServer } from 'node:http'
import { deferred, listenLoopback } from '@taskapp/test-utils'
import { readBody, startStack } from '../../test-helpers'
import { createRelayServer } from '../relay-server'
import { relayOptionsFromEnv } from '../options-from-env'
import type { RelayClusterStats } from '../cluster/cluster'
import type { RelayClusterProbe } from './admin-options'

const ADMIN_KEY = 'admin-key-0123456789abcdef'
const auth = { authorization: `Bearer ${ADMIN_KEY}` }

/** `name{labels} value` lines of a Prometheus text body, by `name{labels}`. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line)
    expect(m, `a metric line: ${line}`).not.toBeNull()
    out.set(`${m![1]}${m![2] ?? ''}`, Number(m![3]))
  }
  return out
}

async function metrics(url: string, headers: Record<string, string> = auth): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`, { headers })
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parseMetrics(await res.text())
}

const problem = async (res: Response) => ((await res.json()) as { code: string }).code

describe('/metrics', () => {
  it('counts leases, agents, in-flight, answers by status and code, and bytes, after real requests', async () => {
    const held = deferred<void>()
    await using stack = await startStack(
      async (req, res) => {
        const body = await readBody(req)
        if (req.url === '/hold') await held.promise
        res.end(`echo:${body.length}`)
      },
      { relay: { adminKey: ADMIN_KEY } },
    )
    const { relay, tunnel } = stack
    const before = await metrics(relay.url)
    expect(before.get('taskapp_relay_leases')).toBe(1)
    expect(before.get('taskapp_relay_agents_attached')).toBe(1)
    expect(before.get('taskapp_relay_inflight_limit{share="lease"}')).toBe(128)
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${tunnel.url}/echo`, {
        method: 'POST',
        headers: tunnel.headers,
        body: 'x'.repeat(100),
      })
      expect(await res.text()).toBe('echo:100')
    }
    expect(
      (await fetch(`${tunnel.url}/echo`, { headers: { 'x-synthtunnel-worker-token': 'wrong' } })).status,
    ).toBe(401)
    expect((await fetch(`${relay.url}/s/rt_unknown/x`)).status).toBe(404)
    const hold = fetch(`${tunnel.url}/hold`, { headers: tunnel.headers })
    await expect
      .poll(async () => (await metrics(relay.url)).get('taskapp_relay_inflight_requests'), { timeout: 5_000 })
      .toBe(1)
    const during = await metrics(relay.url)
    const route = tunnel.url.split('/s/')[1]!.slice(0, 8)
    expect(during.get(`taskapp_relay_lease_inflight_requests{route="${route}…"}`)).toBe(1)
    held.resolve()
    await (await hold).text()
    await expect
      .poll(async () =>
        (await metrics(relay.url)).get('taskapp_relay_responses_total{status="200",code="none"}'),
      )
      .toBe(4)
    const after = await metrics(relay.url)
    expect(after.get('taskapp_relay_responses_total{status="401",code="TUNNEL_AUTH_REQUIRED"}')).toBe(1)
    expect(after.get('taskapp_relay_responses_total{status="404",code="TUNNEL_NOT_FOUND"}')).toBe(1)
    expect(after.get('taskapp_relay_request_bytes_total')).toBe(300)
    expect(after.get('taskapp_relay_response_bytes_total')).toBe(3 * 'echo:100'.length + 'echo:0'.length)
    expect(after.get('taskapp_relay_inflight_requests')).toBe(0)
    expect(after.get('taskapp_relay_agent_attaches_total')).toBe(1)
    expect(after.get('taskapp_relay_agent_reconnects_total')).toBe(0)
    expect(after.get('taskapp_relay_rejected_total{reason="capacity"}')).toBe(0)
  })

  it('counts an agent that attaches again to its lease as a reconnect', async () => {
    await using relay = await createRelayServer({ apiKeys: ['k'], adminKey: ADMIN_KEY })
    const lease = (await (
      await fetch(`${relay.url}/api/v1/synthtunnel/leases`, {
        method: 'POST',
        headers: { authorization: 'Bearer k' },
        body: '{}',
      })
    ).json()) as { lease_id: string; agent_connect: { url: string; agent_token: string } }
    for (let i = 0; i < 2; i++) {
      const ws = new WebSocket(lease.agent_connect.url, {
        headers: { authorization: `Bearer ${lease.agent_connect.agent_token}` },
      })
      onTestFinished(() => ws.terminate())
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
      const ack = new Promise((resolve) => ws.once('message', resolve))
      ws.send(JSON.stringify({ type: 'ATTACH', agent_id: `a${i}`, leases: [{ lease_id: lease.lease_id }] }))
      await ack
    }
    const m = await metrics(relay.url)
    expect(m.get('taskapp_relay_agent_attaches_total')).toBe(2)
    expect(m.get('taskapp_relay_agent_reconnects_total')).toBe(1)
  })

  it('adds the cluster metrics from a probe (a fake probe here: the Redis cluster is another module)', async () => {
    const stats: RelayClusterStats = {
      nodeId: 'node-a',
      forwardsOut: 7,
      forwardsIn: 3,
      forwardFailures: 1,
      hopsRefused: 5,
      takeovers: 2,
      presences: 4,
      heartbeatRttMs: 1.5,
      heartbeatRttSumMs: 30,
      heartbeatCount: 20,
      heartbeatFailures: 6,
    }
    const probe: RelayClusterProbe = { stats: () => stats, ready: () => Promise.resolve(true) }
    await using relay = await createRelayServer({ adminKey: ADMIN_KEY, clusterProbe: probe })
    const m = await metrics(relay.url)
    expect(m.get('taskapp_relay_cluster_forward_hops_total{direction="out"}')).toBe(7)
    expect(m.get('taskapp_relay_cluster_forward_hops_total{direction="in"}')).toBe(3)
    expect(m.get('taskapp_relay_cluster_forward_failures_total')).toBe(1)
    expect(m.get('taskapp_relay_cluster_agents_taken_over_total')).toBe(2)
    expect(m.get('taskapp_relay_cluster_redis_rtt_seconds')).toBe(0.0015)
    expect(m.get('taskapp_relay_cluster_redis_rtt_seconds_total')).toBe(0.03)
    expect(m.get('taskapp_relay_cluster_redis_round_trips_total')).toBe(20)
    expect(m.get('taskapp_relay_cluster_presence_held')).toBe(4)
    expect(m.get('taskapp_relay_cluster_hops_refused_total')).toBe(5)
    expect(m.get('taskapp_relay_cluster_heartbeat_failures_total')).toBe(6)
    stats.forwardsOut = 9
    expect((await metrics(relay.url)).get('taskapp_relay_cluster_forward_hops_total{direction="out"}')).toBe(
      9,
    )
  })
})

describe('/livez and /readyz', () => {
  it('livez answers while the process serves; readyz follows the readiness hook and the cluster probe', async () => {
    let hook = true
    let cluster = true
    const probe: RelayClusterProbe = {
      stats: () => ({
        nodeId: 'node-a',
        forwardsOut: 0,
        forwardsIn: 0,
        forwardFailures: 0,
        hopsRefused: 0,
        takeovers: 0,
        presences: 0,
        heartbeatRttMs: undefined,
        heartbeatRttSumMs: 0,
        heartbeatCount: 0,
        heartbeatFailures: 0,
      }),
      ready: () => Promise.resolve(cluster),
    }
    await using relay = await createRelayServer({ readiness: () => hook, clusterProbe: probe })
    expect((await fetch(`${relay.url}/livez`)).status).toBe(200)
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(200)
    hook = false
    const notReady = await fetch(`${relay.url}/readyz`)
    expect(notReady.status).toBe(503)
    expect(await problem(notReady)).toBe('TUNNEL_NOT_READY')
    hook = true
    cluster = false
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(503)
    cluster = true
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(200)
  })

  it('a readiness hook that throws or rejects means not ready', async () => {
    await using relay = await createRelayServer({ readiness: () => Promise.reject(new Error('store down')) })
    expect((await fetch(`${relay.url}/readyz`)).status).toBe(503)
    expect((await fetch(`${relay.url}/livez`)).status).toBe(200)
  })
})

describe('the admin key', () => {
  it('without one, /metrics and /admin answer 404 TUNNEL_ADMIN_DISABLED', async () => {
    await using relay = await createRelayServer()
    for (const path of ['/metrics', '/admin', '/admin/status.json']) {
      const res = await fetch(`${relay.url}${path}`)
      expect(res.status).toBe(404)
      expect(await problem(res)).toBe('TUNNEL_ADMIN_DISABLED')
    }
  })

  it('is taken from Authorization: Bearer or the login cookie, never from the URL', async () => {
    await using relay = await createRelayServer({ adminKey: ADMIN_KEY, adminPort: 0 })
    const admin = relay.adminUrl!
    const none = await fetch(`${relay.url}/metrics`)
    expect(none.status).toBe(401)
    expect(await problem(none)).toBe('TUNNEL_ADMIN_AUTH_REQUIRED')
    expect(
      (await fetch(`${relay.url}/metrics`, { headers: { authorization: 'Bearer wrong-key-0123456789' } }))
        .status,
    ).toBe(401)
    for (const base of [relay.url, admin]) {
      for (const q of [`key=${ADMIN_KEY}`, `admin_key=${ADMIN_KEY}`, `token=${ADMIN_KEY}`]) {
        const res = await fetch(`${base}/admin/status.json?${q}`, { headers: auth })
        expect(res.status).toBe(400)
        expect(await problem(res)).toBe('TUNNEL_ADMIN_KEY_IN_URL')
      }
    }
    // the page without a key on the admin port: the login form, 401
    const form = await fetch(`${admin}/admin`)
    expect(form.status).toBe(401)
    expect(await form.text()).toContain('<form method="post" action="/admin/login">')
    const post = (base: string, key: string, headers: Record<string, string> = {}) =>
      fetch(`${base}/admin/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ key }).toString(),
      })
    expect((await post(admin, 'not-the-admin-key-at-all')).status).toBe(401)
    expect((await post(admin, ADMIN_KEY, { origin: 'http://evil.example.com' })).status).toBe(403)
    expect((await post(admin, ADMIN_KEY, { 'sec-fetch-site': 'cross-site' })).status).toBe(403)
    const ok = await post(admin, ADMIN_KEY)
    expect(ok.status).toBe(303)
    const setCookie = ok.headers.get('set-cookie')!
    expect(setCookie).toMatch(
      /^taskapp_relay_admin=v1\.\d+\.[\w-]{43}; Path=\/admin; HttpOnly; SameSite=Strict; Max-Age=43200$/,
    )
    expect(setCookie).not.toContain(ADMIN_KEY)
    const cookie = setCookie.split(';')[0]!
    expect((await fetch(`${admin}/admin/status.json`, { headers: { cookie } })).status).toBe(200)
    expect((await fetch(`${admin}/admin`, { headers: { cookie } })).status).toBe(200)
    const forged = cookie.replace(/\.[\w-]{43}$/, `.${'A'.repeat(43)}`)
    expect((await fetch(`${admin}/admin/status.json`, { headers: { cookie: forged } })).status).toBe(401)
    // the main port shares its origin with the tunnels' pages: no form, no login, no cookie there
    const mainPage = await fetch(`${relay.url}/admin`)
    expect(mainPage.status).toBe(401)
    const mainHtml = await mainPage.text()
    expect(mainHtml).not.toContain('<form')
    expect(mainHtml).toContain('admin port')
    expect(await problem(await post(relay.url, ADMIN_KEY))).toBe('TUNNEL_ADMIN_AUTH_REQUIRED')
    expect((await fetch(`${relay.url}/admin/status.json`, { headers: { cookie } })).status).toBe(401)
    expect((await fetch(`${relay.url}/admin/status.json`, { headers: auth })).status).toBe(200)
    // the cookie opens the page, not /metrics (a scraper sends the header)
    expect((await fetch(`${relay.url}/metrics`, { headers: { cookie } })).status).toBe(401)
    expect((await fetch(`${relay.url}/metrics`, { headers: auth })).status).toBe(200)
  })

  it('answers an oversized login form with 413 on the same connection, not a reset', async () => {
    await using relay = await createRelayServer({ adminKey: ADMIN_KEY, adminPort: 0 })
    const res = await fetch(`${relay.adminUrl!}/admin/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ key: ADMIN_KEY, pad: 'x'.repeat(64 * 1024) }).toString(),
    })
    expect(res.status).toBe(413)
    expect(res.headers.get('set-cookie')).toBeNull()
    expect(await res.text()).toContain('too large')
  })

  it('refuses a sixth wrong key in a minute with 429, even the right one then', async () => {
    await using relay = await createRelayServer({ adminKey: ADMIN_KEY, adminPort: 0 })
    const login = (key: string) =>
      fetch(`${relay.adminUrl!}/admin/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ key }).toString(),
      })
    for (let i = 0; i < 5; i++) expect((await login(`wrong-key-number-${i}-000`)).status).toBe(401)
    const refused = await login(ADMIN_KEY)
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(refused.headers.get('set-cookie')).toBeNull()
  })

  it('is checked at start: long enough, not an API key, needed for a non-loopback admin host', async () => {
    const code = 'TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS'
    await expect(createRelayServer({ adminKey: 'short' })).rejects.toMatchObject({
      code,
      message: /at least 16/,
    })
    await expect(createRelayServer({ apiKeys: [ADMIN_KEY], adminKey: ADMIN_KEY })).rejects.toMatchObject({
      code,
      message: /differ/,
    })
    await expect(createRelayServer({ adminPort: 0, adminHost: '0.0.0.0' })).rejects.toMatchObject({
      code,
      message: /not loopback/,
    })
    await expect(createRelayServer({ adminPort: 70000 })).rejects.toMatchObject({
      code,
      message: /adminPort/,
    })
  })

  it('comes from TASKAPP_RELAY_ADMIN_KEY or a file named by TASKAPP_RELAY_ADMIN_KEY_FILE', () => {
    const dir = mkdtempSync(join(tmpdir(), 'relay-admin-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'admin-key')
    writeFileSync(file, `${ADMIN_KEY}\n`, { mode: 0o600 })
    expect(relayOptionsFromEnv({ TASKAPP_RELAY_ADMIN_KEY_FILE: file })).toMatchObject({ adminKey: ADMIN_KEY })
    expect(
      relayOptionsFromEnv({ TASKAPP_RELAY_ADMIN_KEY: ADMIN_KEY, TASKAPP_RELAY_ADMIN_PORT: '9464' }),
    ).toMatchObject({
      adminKey: ADMIN_KEY,
      adminPort: 9464,
    })
    expect(() =>
      relayOptionsFromEnv({ TASKAPP_RELAY_ADMIN_KEY: 'x', TASKAPP_RELAY_ADMIN_KEY_FILE: file }),
    ).toThrow(/not both/)
    expect(() => relayOptionsFromEnv({ TASKAPP_RELAY_ADMIN_KEY_FILE: join(dir, 'missing') })).toThrow(
      /cannot be read/,
    )
    expect(() => relayOptionsFromEnv({ TASKAPP_RELAY_ADMIN_PORT: 'abc' })).toThrow(/TASKAPP_RELAY_ADMIN_PORT/)
  })
})

describe('the admin port', () => {
  it('serves /metrics without a key on loopback, the page with one, and nothing public', async () => {
    await using relay = await createRelayServer({ adminPort: 0 })
    expect(relay.adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(relay.adminUrl).not.toBe(relay.url)
    const m = await metrics(relay.adminUrl!, {})
    expect(m.get('taskapp_relay_agents_attached')).toBe(0)
    expect((await fetch(`${relay.adminUrl}/readyz`)).status).toBe(200)
    expect(await problem(await fetch(`${relay.adminUrl}/admin`))).toBe('TUNNEL_ADMIN_DISABLED')
    expect((await fetch(`${relay.adminUrl}/s/rt_x/health`)).status).toBe(404)
    expect((await fetch(`${relay.adminUrl}/api/v1/synthtunnel/leases`, { method: 'POST' })).status).toBe(404)
    // the main port still wants a key for /metrics
    expect(await problem(await fetch(`${relay.url}/metrics`))).toBe('TUNNEL_ADMIN_DISABLED')
  })

  it('a taken admin port fails the start with TASKAPP_ERR_SYNTH_RELAY_LISTEN_FAILED', async () => {
    await using taken = await listenLoopback(createServer())
    const err = await createRelayServer({ adminPort: taken.port }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_SYNTH_RELAY_LISTEN_FAILED', message: /admin port/ })
  })

  it('closes with the relay', async () => {
    const relay = await createRelayServer({ adminPort: 0 })
    const url = relay.adminUrl!
    await relay.close()
    await expect(fetch(`${url}/livez`)).rejects.toThrow()
  })
})

describe('the status page', () => {
  it('lists the tunnel with its counters and holds no secret (worker token, agent token, API key, admin key)', async () => {
    await using stack = await startStack((_req, res) => res.end('ok'), { relay: { adminKey: ADMIN_KEY } })
    const { relay, tunnel } = stack
    for (let i = 0; i < 2; i++) await (await fetch(`${tunnel.url}/x`, { headers: tunnel.headers })).text()
    await (await fetch(`${tunnel.url}/x`)).text() // 401: an error of this tunnel
    const lease = (await (
      await fetch(`${relay.url}/api/v1/synthtunnel/leases`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-relay-key' },
        body: '{}',
      })
    ).json()) as { route_token: string; worker_token: string; agent_connect: { agent_token: string } }
    const json = await (await fetch(`${relay.url}/admin/status.json`, { headers: auth })).text()
    const html = await (await fetch(`${relay.url}/admin`, { headers: auth })).text()
    const status = JSON.parse(json) as {
      relay: { leases: number; requests: number }
      tunnels: Array<Record<string, unknown>>
    }
    expect(status.relay.leases).toBe(2)
    const route = tunnel.url.split('/s/')[1]!
    const row = status.tunnels.find((t) => t.route === `${route.slice(0, 8)}…`)
    expect(row).toMatchObject({
      owner: 'test…',
      agent: true,
      inflight: 0,
      requests1m: 3,
      errors1m: 1,
      requests5m: 3,
      errors5m: 1,
    })
    expect(status.tunnels.find((t) => t.route === `${lease.route_token.slice(0, 8)}…`)).toMatchObject({
      agent: false,
      requests5m: 0,
    })
    const secrets = [
      tunnel.workerToken,
      lease.worker_token,
      lease.agent_connect.agent_token,
      'test-relay-key',
      ADMIN_KEY,
      route,
      lease.route_token,
      tunnel.leaseId,
    ]
    for (const text of [json, html]) for (const secret of secrets) expect(text).not.toContain(secret)
    expect(html).toContain(`${route.slice(0, 8)}…`)
  })
})
