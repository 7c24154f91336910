/**
 * Relay nodes as child processes on one real Redis: the node holding an agent is SIGKILLed under
 * load (callers fail fast, the agent comes back on another node, no lease lost), and Redis itself
 * is restarted (what works while it is down, and that the nodes recover).
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { startRedisServer } from '@taskapp/test-utils'
import type { TestRedisServer } from '@taskapp/test-utils'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, onTestFinished, test, vi } from 'vitest'
import type { SynthTunnelEvent } from '../../agent/agent'
import type { ClusterNodeMessage } from '../../fixtures/cluster-node-child'
import { synthTunnel } from '../../synth-tunnel'
import { forkFixture, nextEvent, startLocalServer } from '../../test-helpers'
import { createRelayServer } from '../relay-server'
import { createRedisLeaseStore } from './redis-lease-store'

const SECRET = 'failover-secret-0123456789abcdef'
/** Longest any one caller may wait for an answer while a node dies: a hang fails the test. */
const CALL_DEADLINE_MS = 5_000
const ADMIN_KEY = 'admin-key-of-the-failover-test'

let redis: TestRedisServer
beforeAll(async () => {
  redis = await startRedisServer()
})
afterAll(async () => {
  await redis.close()
})

async function startChildNode(prefix: string, nodeId: string): Promise<{ child: ChildProcess; url: string }> {
  vi.stubEnv('TASKAPP_RELAY_CLUSTER_SECRET', SECRET)
  const child = forkFixture('cluster-node-child.ts', [redis.url, prefix, nodeId])
  vi.unstubAllEnvs()
  const msg = await nextEvent<ClusterNodeMessage>(child, 'message', 20_000)
  if (msg.type !== 'listening') throw new Error(`node ${nodeId} failed: ${msg.message}`)
  return { child, url: msg.url }
}

async function echoTunnel(backendUrl: string, relayUrls: string[], events: SynthTunnelEvent[]) {
  const local = await startLocalServer((req, res) => res.end(`ok ${req.url}`))
  onTestFinished(() => local.close())
  const tunnel = await synthTunnel({
    backendUrl,
    relayUrls,
    apiKey: 'k',
    localApiKeys: [],
    env: {},
    onEvent: (e) => events.push(e),
  }).open(local.target)
  onTestFinished(() => tunnel.close())
  return { tunnel, path: new URL(tunnel.url).pathname }
}

/** One call; its status, or the error code when it failed without an answer. */
async function call(url: string, headers: Record<string, string>): Promise<{ status: number | string }> {
  try {
    const r = await request(url, { headers, headersTimeout: CALL_DEADLINE_MS, bodyTimeout: CALL_DEADLINE_MS })
    await r.body.dump()
    return { status: r.statusCode }
  } catch (err) {
    return { status: String((err as { code?: string }).code ?? err) }
  }
}

describe('relay cluster failover (nodes in child processes)', () => {
  test('node A SIGKILLed under load: callers fail fast, the agent reattaches to B or C, new requests succeed, the lease survives', async () => {
    const prefix = redis.prefix()
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((id) => startChildNode(prefix, id)))
    const events: SynthTunnelEvent[] = []
    const { tunnel, path } = await echoTunnel(a!.url, [b!.url, c!.url], events)
    const headers = { ...tunnel.headers }
    await expect
      .poll(async () => (await call(`${b!.url}${path}/warm`, headers)).status, { timeout: 10_000 })
      .toBe(200)

    let stop = false
    onTestFinished(() => {
      stop = true // a failed assertion must not leave the load loops spinning
    })
    const results: { status: number | string }[] = []
    const load = Array.from({ length: 8 }, async (_, i) => {
      while (!stop) results.push(await call(`${(i % 2 ? b : c)!.url}${path}/load/${i}`, headers))
    })
    await expect.poll(() => results.length, { timeout: 10_000 }).toBeGreaterThan(50)
    const exited = once(a!.child, 'exit')
    a!.child.kill('SIGKILL')
    await exited
    const killedAt = results.length
    // the agent comes back on another node and requests through B and C succeed again
    await expect.poll(() => events.filter((e) => e.type === 'connected').length, { timeout: 15_000 }).toBe(2)
    await expect
      .poll(async () => (await call(`${b!.url}${path}/after`, headers)).status, { timeout: 15_000 })
      .toBe(200)
    await expect
      .poll(async () => (await call(`${c!.url}${path}/after`, headers)).status, { timeout: 15_000 })
      .toBe(200)
    const settled = results.length
    await expect
      .poll(() => results.slice(settled).filter((r) => r.status === 200).length, { timeout: 15_000 })
      .toBeGreaterThan(20)
    stop = true
    await Promise.all(load)

    // every caller got an answer (a call past the undici deadlines would show its error code, not a
    // status); failures are the relay's 502/503
    for (const r of results) expect([200, 502, 503]).toContain(r.status)
    expect(results.slice(0, killedAt).some((r) => r.status === 200)).toBe(true)
    expect(tunnel.error).toBeUndefined()
    expect(events.some((e) => e.type === 'closed')).toBe(false)
    await using store = createRedisLeaseStore({ redis: redis.url, prefix })
    expect((await store.get(tunnel.leaseId))?.leaseId).toBe(tunnel.leaseId)
  })
})

describe('Redis restarted under a cluster', () => {
  test('while Redis is down local routes work, new leases and hops get 503 and /readyz says so; afterwards the nodes recover', async () => {
    const prefix = redis.prefix()
    const nodes = await Promise.all(
      [0, 1].map(() =>
        createRelayServer({
          apiKeys: ['k'],
          adminKey: ADMIN_KEY,
          adminPort: 0, // /metrics and /readyz, which ask the cluster
          cluster: { redis: redis.url, prefix, secret: SECRET, heartbeatMs: 100, presenceTtlMs: 1_000 },
        }),
      ),
    )
    for (const n of nodes) onTestFinished(() => n.close())
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]]
    const events: SynthTunnelEvent[] = []
    const { tunnel, path } = await echoTunnel(a.url, [b.url], events)
    const headers = { ...tunnel.headers }
    await expect
      .poll(async () => (await call(`${b.url}${path}/x`, headers)).status, { timeout: 5_000 })
      .toBe(200)
    expect((await fetch(`${a.adminUrl!}/readyz`)).status).toBe(200)
    const metrics = await (await fetch(`${b.adminUrl!}/metrics`)).text()
    expect(metrics).toMatch(/^taskapp_relay_cluster_forward_hops_total\{direction="out"\} [1-9]/m)
    expect(metrics).toMatch(/^taskapp_relay_cluster_redis_round_trips_total [1-9]/m)

    await redis.stop()
    expect((await call(`${a.url}${path}/local`, headers)).status).toBe(200) // the owner serves from its session
    // B forwards from its half-second caches of lease and presence, then needs Redis: 503
    await expect
      .poll(async () => (await call(`${b.url}${path}/hop`, headers)).status, { timeout: 5_000 })
      .toBe(503)
    const lease = await request(`${b.url}/api/v1/synthtunnel/leases`, {
      method: 'POST',
      headers: { authorization: 'Bearer k' },
      body: '{}',
    })
    expect(lease.statusCode).toBe(503)
    expect(await lease.body.json()).toMatchObject({ code: 'TUNNEL_CLUSTER_UNAVAILABLE' })
    await expect.poll(() => a.cluster!.ready(), { timeout: 5_000 }).toBe(false)
    const notReady = await fetch(`${a.adminUrl!}/readyz`)
    expect(notReady.status).toBe(503)
    expect(await notReady.json()).toMatchObject({ code: 'TUNNEL_NOT_READY' })
    // the status page needs the lease store: a 503, and the relay lives on
    const status = await fetch(`${a.url}/admin/status.json`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    })
    expect(status.status).toBe(503)
    expect(await status.json()).toMatchObject({ code: 'TUNNEL_CLUSTER_UNAVAILABLE' })
    expect((await fetch(`${a.url}/livez`)).status).toBe(200)

    await redis.restart() // a Redis without persistence: its data, this lease included, is gone
    await expect
      .poll(() => Promise.all(nodes.map((n) => n.cluster!.ready())), { timeout: 10_000 })
      .toEqual([true, true])
    expect((await fetch(`${a.adminUrl!}/readyz`)).status).toBe(200)
    // the lost lease ends its agent for good; a new tunnel works across the nodes
    await expect.poll(() => tunnel.error?.code, { timeout: 10_000 }).toBe('TASKAPP_ERR_SYNTH_LEASE_GONE')
    const fresh = await echoTunnel(a.url, [b.url], [])
    await expect
      .poll(async () => (await call(`${b.url}${fresh.path}/again`, fresh.tunnel.headers)).status, {
        timeout: 5_000,
      })
      .toBe(200)
  })
})

describe('a cluster node that cannot start', () => {
  test('bad admin options after Redis connected: the error, and no Redis connection left open', async () => {
    const clients = () => redis.connections()
    const before = await clients()
    const err = await createRelayServer({
      adminKey: 'short',
      cluster: { redis: redis.url, prefix: redis.prefix(), secret: SECRET },
    }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS', message: /at least 16/ })
    await expect.poll(clients, { timeout: 5_000 }).toBe(before)
  })
})
