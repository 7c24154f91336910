/** Option checks of cluster mode, the agent's relayUrls, the hop credential and the lookup cache. */
import { once } from 'node:events'
import { createServer } from 'node:net'
import { describe, expect, onTestFinished, test, vi } from 'vitest'
import { SynthTunnelError, SynthTunnelErrorCode } from '../../errors'
import { synthTunnel } from '../../synth-tunnel'
import { startLocalServer } from '../../test-helpers'
import { createRelayServer } from '../relay-server'
import { resolveClusterOptions } from './cluster-options'
import type { RelayClusterOptions } from './cluster-options'
import { HopCredentials, signHop, verifyHop } from './hop-auth'
import { TtlCache } from './ttl-cache'

const base: RelayClusterOptions = { redis: 'redis://127.0.0.1:1', secret: 's'.repeat(16) }

describe('resolveClusterOptions', () => {
  test.each([
    [{ advertiseUrl: 'ftp://x' }, /advertiseUrl must be the http\(s\) URL/],
    [{ advertiseUrl: 'not a url' }, /advertiseUrl/],
    [{ secret: 'short' }, /secret must be a string of at least 16 characters/],
    [{ secret: undefined }, /secret/],
    [{ nodeId: 'bad id!' }, /nodeId must be 1–64/],
    [{ redis: 42 }, /redis must be a Redis URL or an ioredis client/],
    [{ presenceTtlMs: 1_000, heartbeatMs: 800 }, /heartbeatMs \(800\) must be at most half of presenceTtlMs/],
    [{ heartbeatMs: 0 }, /heartbeatMs must be a number of milliseconds/],
  ])('%o → TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS', (extra, message) => {
    const err = (() => {
      try {
        resolveClusterOptions({ ...base, ...(extra as object) })
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(SynthTunnelError)
    expect(err).toMatchObject({ code: SynthTunnelErrorCode.RelayInvalidOptions, message })
  })

  test('defaults: random node id, prefix, 3 s TTL, 1 s heartbeat; advertiseUrl keeps its origin', () => {
    const s = resolveClusterOptions({ ...base, advertiseUrl: 'http://10.0.0.5:8700/ignored' })
    expect(s).toMatchObject({ prefix: 'taskapp:relay:', presenceTtlMs: 3_000, heartbeatMs: 1_000 })
    expect(s.advertiseUrl).toBe('http://10.0.0.5:8700')
    expect(s.nodeId).toMatch(/^node-[0-9a-f]{12}$/)
  })

  test('a relay whose Redis does not answer fails to start with TASKAPP_ERR_SYNTH_RELAY_REDIS and leaves no port bound', async () => {
    // a TCP port that accepts nothing Redis would say: a listener we close at once is refused
    const probe = createServer().listen(0, '127.0.0.1')
    await once(probe, 'listening')
    const port = (probe.address() as { port: number }).port
    probe.close()
    await expect(
      createRelayServer({ cluster: { ...base, redis: `redis://127.0.0.1:${port}` } }),
    ).rejects.toMatchObject({ code: SynthTunnelErrorCode.RelayRedis })
  })
})

describe('hop credential', () => {
  test('signs a time and the receiving node with the secret; valid within a minute, for that node only', () => {
    const now = 1_700_000_000_000
    const c = signHop('secret-0123456789', 'relay-a', now)
    expect(verifyHop('secret-0123456789', 'relay-a', c, now + 59_000)).toBe(true)
    expect(verifyHop('secret-0123456789', 'relay-a', c, now + 61_000)).toBe(false)
    expect(verifyHop('secret-0123456789', 'relay-b', c, now)).toBe(false)
    expect(verifyHop('other-secret-0123', 'relay-a', c, now)).toBe(false)
    expect(verifyHop('secret-0123456789', 'relay-a', [c], now)).toBe(false)
    expect(verifyHop('secret-0123456789', 'relay-a', `${now}.AAAA`, now)).toBe(false)
  })

  test('HopCredentials: one credential per peer and second; checks remembered per time, still exact', () => {
    const now = 1_700_000_000_000
    const b = new HopCredentials('secret-0123456789', 'relay-b')
    const a = new HopCredentials('secret-0123456789', 'relay-a')
    const c = b.sign('relay-a', now)
    expect(b.sign('relay-a', now + 999)).toBe(c)
    expect(b.sign('relay-a', now + 1_000)).not.toBe(c)
    expect(b.sign('relay-c', now)).not.toBe(c)
    for (let i = 0; i < 2; i += 1) {
      expect(a.verify(c, now + 10)).toBe(true)
      expect(a.verify(`${c.slice(0, -2)}AA`, now + 10)).toBe(false) // same time, wrong MAC
      expect(a.verify(b.sign('relay-c', now), now)).toBe(false) // signed for another node
      expect(b.verify(c, now)).toBe(false)
      expect(a.verify(c, now + 61_000)).toBe(false)
    }
    const other = new HopCredentials('other-secret-0123', 'relay-b')
    expect(a.verify(other.sign('relay-a', now), now)).toBe(false)
  })
})

describe('TtlCache', () => {
  test('an entry lives ttl ms from when it was set, not from when it was read', () => {
    const cache = new TtlCache<string>(500)
    cache.set('k', 'v', 1_000)
    expect(cache.get('k', 1_400)).toBe('v')
    expect(cache.get('k', 1_500)).toBe('v')
    expect(cache.get('k', 1_501)).toBeUndefined()
  })
})

describe('synthTunnel relayUrls', () => {
  test('entries that are not http(s) URLs → TASKAPP_ERR_SYNTH_INVALID_OPTIONS', () => {
    expect(() => synthTunnel({ relayUrls: ['ws://127.0.0.1:1'], apiKey: 'k', env: {} })).toThrow(
      expect.objectContaining({
        code: SynthTunnelErrorCode.InvalidOptions,
        message: expect.stringMatching(/relayUrls/),
      }),
    )
    expect(() => synthTunnel({ relayUrls: 'http://x' as unknown as string[], apiKey: 'k', env: {} })).toThrow(
      expect.objectContaining({ code: SynthTunnelErrorCode.InvalidOptions }),
    )
  })

  test('backendUrl unreachable: the lease is taken from the next relay URL, and closing deletes it there', async () => {
    const relay = await createRelayServer({ apiKeys: ['k'] })
    onTestFinished(() => relay.close())
    const local = await startLocalServer((_req, res) => res.end('ok'))
    onTestFinished(() => local.close())
    const dead = createServer().listen(0, '127.0.0.1')
    await once(dead, 'listening')
    const deadUrl = `http://127.0.0.1:${(dead.address() as { port: number }).port}`
    dead.close()
    const onEvent = vi.fn()
    const tunnel = await synthTunnel({
      backendUrl: deadUrl,
      relayUrls: [relay.url],
      apiKey: 'k',
      localApiKeys: [],
      env: {},
      onEvent,
    }).open(local.target)
    expect(tunnel.url.startsWith(relay.url)).toBe(true)
    const r = await fetch(`${tunnel.url}/x`, { headers: tunnel.headers })
    expect(await r.text()).toBe('ok')
    await tunnel.close()
    expect(relay.stats().agents).toBe(0)
    const gone = await fetch(`${tunnel.url}/x`, { headers: tunnel.headers })
    expect(gone.status).toBe(404) // deleted through the relay URL, not left to expire
  })
})
