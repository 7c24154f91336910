/**
 * Three relay nodes in this process sharing one real Redis (test-utils' redis-server): forwarding
 * between nodes, the hop's credential, cluster-wide lease caps, lease deletion on another node,
 * cancellation across the hop, and a Redis restart. Killing a node is in cluster-failover.test.ts.
 */
import { startRedisServer } from '@taskapp/test-utils'
import type { TestRedisServer } from '@taskapp/test-utils'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest'
import type { SynthTunnelEvent } from '../../agent/agent'
import { synthTunnel } from '../../synth-tunnel'
import { readBody, startLocalServer } from '../../test-helpers'
import { createRelayServer } from '../relay-server'
import type { RelayServer, RelayServerOptions } from '../relay-server'
import { HOP_AUTH_HEADER, signHop } from './hop-auth'

const SECRET = 'cluster-secret-for-tests-0123456789'
let redis: TestRedisServer
beforeAll(async () => {
  redis = await startRedisServer()
})
afterAll(async () => {
  await redis.close()
})

async function startNodes(
  n: number,
  extra: RelayServerOptions = {},
  prefix = redis.prefix(),
): Promise<RelayServer[]> {
  const nodes: RelayServer[] = []
  for (let i = 0; i < n; i += 1) {
    // a node learns its own port only once it listens: advertise a reserved one
    const relay = await createRelayServer({
      apiKeys: ['k'],
      ...extra,
      cluster: {
        redis: redis.url,
        secret: SECRET,
        nodeId: `n${i}`,
        prefix,
        heartbeatMs: 100,
        presenceTtlMs: 1_000,
      },
    })
    onTestFinished(() => relay.close())
    nodes.push(relay)
  }
  return nodes
}

/** A local echo server and a tunnel to it through `node`. */
async function tunnelThrough(node: RelayServer, onEvent?: (e: SynthTunnelEvent) => void) {
  const local = await startLocalServer(async (req, res) => {
    const body = await readBody(req)
    res.setHeader('x-path', req.url ?? '')
    res.end(body.length ? body : `hello ${req.url}`)
  })
  onTestFinished(() => local.close())
  const tunnel = await synthTunnel({
    backendUrl: node.url,
    apiKey: 'k',
    localApiKeys: [],
    env: {},
    ...(onEvent ? { onEvent } : {}),
  }).open(local.target)
  onTestFinished(() => tunnel.close())
  const path = new URL(tunnel.url).pathname
  return { local, tunnel, path, headers: { ...tunnel.headers } }
}

describe('relay cluster: three nodes on one Redis', () => {
  test('an agent on A serves callers on B and C: correct bodies, 200 concurrent', async () => {
    const [a, b, c] = await startNodes(3)
    const { path, headers } = await tunnelThrough(a!)
    await expect.poll(() => a!.cluster!.stats().presences, { timeout: 5_000 }).toBe(1)
    const calls = Array.from({ length: 200 }, async (_, i) => {
      const via = i % 2 ? b! : c!
      const body = i % 4 === 0 ? `payload-${i}-${'x'.repeat(i * 50)}` : undefined
      const r = await request(`${via.url}${path}/item/${i}?q=${i}`, {
        method: body ? 'POST' : 'GET',
        headers,
        ...(body ? { body } : {}),
      })
      return { status: r.statusCode, text: await r.body.text(), xpath: r.headers['x-path'], body, i }
    })
    for (const r of await Promise.all(calls)) {
      expect(r.status, r.text).toBe(200)
      expect(r.xpath).toBe(`/item/${r.i}?q=${r.i}`)
      expect(r.text).toBe(r.body ?? `hello /item/${r.i}?q=${r.i}`)
    }
    expect(b!.cluster!.stats().forwardsOut + c!.cluster!.stats().forwardsOut).toBe(200)
    expect(a!.cluster!.stats().forwardsIn).toBe(200)
    expect(b!.stats().inflight + c!.stats().inflight + a!.stats().inflight).toBe(0)
    expect(await b!.cluster!.ready()).toBe(true)
  })

  test('a wrong worker token is refused on the entry node as on the owner', async () => {
    const [a, b] = await startNodes(2)
    const { path } = await tunnelThrough(a!)
    const r = await request(`${b!.url}${path}/x`, { headers: { 'x-synthtunnel-worker-token': 'wt_wrong' } })
    expect(r.statusCode).toBe(401)
    expect(await r.body.json()).toMatchObject({ code: 'TUNNEL_AUTH_REQUIRED' })
  })

  test('the internal hop path needs the cluster secret: absent, forged, other-secret, other-node and stale credentials get 404', async () => {
    const [a, b] = await startNodes(2)
    const { path, headers } = await tunnelThrough(a!)
    await expect.poll(() => a!.cluster!.stats().presences, { timeout: 5_000 }).toBe(1)
    const hopPath = `/_cluster${path}/secret`
    const tries: (string | undefined)[] = [
      undefined,
      'garbage',
      `${Date.now()}.AAAA`,
      signHop('another-secret-0123456789', a!.cluster!.nodeId),
      signHop(SECRET, b!.cluster!.nodeId), // signed for another node
      signHop(SECRET, a!.cluster!.nodeId, Date.now() - 5 * 60_000),
    ]
    for (const credential of tries) {
      const r = await request(`${a!.url}${hopPath}`, {
        headers: { ...headers, ...(credential ? { [HOP_AUTH_HEADER]: credential } : {}) },
      })
      expect(r.statusCode, String(credential)).toBe(404)
      await r.body.dump()
    }
    expect(a!.cluster!.stats().hopsRefused).toBe(tries.length)
    const ok = await request(`${a!.url}${hopPath}`, {
      headers: { ...headers, [HOP_AUTH_HEADER]: signHop(SECRET, a!.cluster!.nodeId) },
    })
    expect(ok.statusCode).toBe(200)
    expect(await ok.body.text()).toBe('hello /secret')
    // a caller's own hop header on a public path is not taken for a credential, nor passed on
    const pub = await request(`${b!.url}${path}/p`, { headers: { ...headers, [HOP_AUTH_HEADER]: 'x' } })
    expect(pub.statusCode).toBe(200)
    await pub.body.dump()
  })

  test('lease caps count across nodes; a lease deleted on C drops its agent on A', async () => {
    const [a, b, c] = await startNodes(3, { maxLeasesPerKey: 2 })
    const events: SynthTunnelEvent[] = []
    const { tunnel } = await tunnelThrough(a!, (e) => events.push(e))
    await tunnelThrough(b!)
    const refused = await request(`${c!.url}/api/v1/synthtunnel/leases`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: '{}',
    })
    expect(refused.statusCode).toBe(429)
    expect(await refused.body.json()).toMatchObject({ code: 'TUNNEL_LEASES_PER_KEY_LIMIT' })
    const del = await request(`${c!.url}/api/v1/synthtunnel/leases/${tunnel.leaseId}`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer k' },
    })
    expect(del.statusCode).toBe(204)
    await del.body.dump()
    await expect.poll(() => tunnel.error?.code, { timeout: 5_000 }).toBe('TASKAPP_ERR_SYNTH_LEASE_GONE')
    expect(a!.cluster!.stats().presences).toBe(0)
  })

  test('a node closed for a rolling restart: its agent reattaches to another node, presence moves, callers on C get through', async () => {
    const [a, b, c] = await startNodes(3)
    const local = await startLocalServer((req, res) => res.end(`ok ${req.url}`))
    onTestFinished(() => local.close())
    const events: SynthTunnelEvent[] = []
    const tunnel = await synthTunnel({
      backendUrl: a!.url,
      relayUrls: [b!.url],
      apiKey: 'k',
      localApiKeys: [],
      env: {},
      onEvent: (e) => events.push(e),
    }).open(local.target)
    onTestFinished(() => tunnel.close())
    const path = new URL(tunnel.url).pathname
    await expect.poll(() => a!.cluster!.stats().presences, { timeout: 5_000 }).toBe(1)
    await a!.close()
    await expect.poll(() => b!.cluster!.stats().presences, { timeout: 10_000 }).toBe(1)
    await expect
      .poll(
        async () => {
          const r = await request(`${c!.url}${path}/after`, { headers: tunnel.headers })
          await r.body.dump()
          return r.statusCode
        },
        { timeout: 10_000 },
      )
      .toBe(200)
    expect(tunnel.error).toBeUndefined()
    expect(events.filter((e) => e.type === 'connected')).toHaveLength(2)
  })

  test('answers through the hop: 1 MiB streamed, chunked without a length, HEAD, an empty 204', async () => {
    const [a, b] = await startNodes(2)
    const big = Buffer.alloc(1024 * 1024, 'abcdefgh')
    const local = await startLocalServer((req, res) => {
      if (req.url === '/big') return res.end(big) // content-length over the whole-answer limit
      if (req.url === '/empty') return res.writeHead(204).end()
      if (req.url === '/chunked') {
        res.write('one,')
        res.write('two,')
        return setImmediate(() => res.end('three'))
      }
      res.end('head-body')
    })
    onTestFinished(() => local.close())
    const tunnel = await synthTunnel({ backendUrl: a!.url, apiKey: 'k', localApiKeys: [], env: {} }).open(
      local.target,
    )
    onTestFinished(() => tunnel.close())
    await expect.poll(() => a!.cluster!.stats().presences, { timeout: 5_000 }).toBe(1)
    const url = `${b!.url}${new URL(tunnel.url).pathname}`
    const r1 = await request(`${url}/big`, { headers: tunnel.headers })
    expect(r1.headers['content-length']).toBe(String(big.length))
    expect(Buffer.from(await r1.body.arrayBuffer()).equals(big)).toBe(true)
    const r2 = await request(`${url}/chunked`, { headers: tunnel.headers })
    expect(await r2.body.text()).toBe('one,two,three')
    // HEAD: through the hop as through the owning node
    const heads = await Promise.all(
      [url, `${a!.url}${new URL(tunnel.url).pathname}`].map(async (u) => {
        const r = await request(`${u}/h`, { method: 'HEAD', headers: tunnel.headers })
        return [r.statusCode, r.headers['content-length'], await r.body.text()]
      }),
    )
    expect(heads[0]).toEqual(heads[1])
    expect(heads[0]![0]).toBe(200)
    const r4 = await request(`${url}/empty`, { headers: tunnel.headers })
    expect([r4.statusCode, await r4.body.text()]).toEqual([204, ''])
    expect(b!.cluster!.stats().forwardsOut).toBe(4)
    expect(a!.stats().inflight + b!.stats().inflight).toBe(0)
  })

  test('a caller who leaves on B cancels the request on the agent behind A', async () => {
    const [a, b] = await startNodes(2)
    let closedLocally = false
    const local = await startLocalServer((req, res) => {
      res.writeHead(200)
      res.write('start')
      req.on('close', () => (closedLocally = true)) // never ends on its own
    })
    onTestFinished(() => local.close())
    const tunnel = await synthTunnel({ backendUrl: a!.url, apiKey: 'k', localApiKeys: [], env: {} }).open(
      local.target,
    )
    onTestFinished(() => tunnel.close())
    await expect.poll(() => a!.cluster!.stats().presences, { timeout: 5_000 }).toBe(1)
    const abort = new AbortController()
    const r = await request(`${b!.url}${new URL(tunnel.url).pathname}/slow`, {
      headers: tunnel.headers,
      signal: abort.signal,
    })
    expect(r.statusCode).toBe(200)
    for await (const chunk of r.body) {
      expect(String(chunk)).toBe('start')
      break
    }
    abort.abort()
    await expect.poll(() => closedLocally, { timeout: 5_000 }).toBe(true)
    await expect.poll(() => a!.stats().inflight, { timeout: 5_000 }).toBe(0)
  })
})
