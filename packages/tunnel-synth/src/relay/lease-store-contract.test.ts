/** One contract, three stores: memory, file and Redis (a real redis-server from test-utils). */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRedisServer } from '@taskapp/test-utils'
import type { TestRedisServer } from '@taskapp/test-utils'
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest'
import { SynthTunnelErrorCode } from '../errors'
import { testLease } from '../test-helpers'
import { createRedisLeaseStore } from './cluster/redis-lease-store'
import { createFileLeaseStore } from './file-lease-store'
import { createMemoryLeaseStore } from './lease-store'
import type { LeaseStore } from './lease-store'

let redis: TestRedisServer
beforeAll(async () => {
  redis = await startRedisServer()
})
afterAll(async () => {
  await redis.close()
})

/** A fresh, empty store of each kind; `twin` opens a second handle on the same data. */
interface Kind {
  name: string
  make(): Promise<{ store: LeaseStore; twin: () => LeaseStore }>
}

const kinds: Kind[] = [
  {
    name: 'memory',
    make: async () => {
      const store = createMemoryLeaseStore() // one process only: the second handle is the same store
      return { store, twin: () => store }
    },
  },
  {
    name: 'file',
    make: async () => {
      const dir = await mkdtemp(join(tmpdir(), 'taskapp-contract-'))
      onTestFinished(() => rm(dir, { recursive: true, force: true }))
      const file = join(dir, 'leases.json')
      return { store: createFileLeaseStore(file), twin: () => createFileLeaseStore(file) }
    },
  },
  {
    name: 'redis',
    make: async () => {
      const prefix = redis.prefix()
      const open = () => {
        const s = createRedisLeaseStore({ redis: redis.url, prefix })
        onTestFinished(() => s.close())
        return s
      }
      return { store: open(), twin: open }
    },
  },
]

describe.each(kinds)('LeaseStore contract: $name', (kind) => {
  test('put, get, find by route token and agent-token hash, delete', async () => {
    const { store } = await kind.make()
    const l1 = testLease(1)
    const l2 = testLease(2, { localTarget: undefined })
    await store.put(l1)
    await store.put(l2)
    expect(await store.get('lease_1')).toEqual(l1)
    expect(await store.get('lease_2')).toEqual(l2)
    expect(await store.findByRouteToken('rt_2')).toEqual(l2)
    expect(await store.findByAgentTokenHash(l1.agentTokenHash)).toEqual(l1)
    expect(await store.findByRouteToken('rt_nope')).toBeUndefined()
    expect(await store.findByAgentTokenHash('00')).toBeUndefined()
    expect(await store.size()).toBe(2)
    expect(await store.delete('lease_nope')).toBe(false)
    expect(await store.delete('lease_1')).toBe(true)
    expect(await store.delete('lease_1')).toBe(false)
    expect(await store.get('lease_1')).toBeUndefined()
    expect(await store.findByRouteToken('rt_1')).toBeUndefined()
    expect(await store.findByAgentTokenHash(l1.agentTokenHash)).toBeUndefined()
    expect(await store.size()).toBe(1)
  })

  test('deleteExpired removes and returns exactly the leases expired at `now`', async () => {
    const { store } = await kind.make()
    const now = Date.now()
    const gone = testLease(1, { expiresAt: now - 1 })
    const edge = testLease(2, { expiresAt: now })
    const live = testLease(3, { expiresAt: now + 60_000 })
    for (const l of [gone, edge, live]) await store.put(l)
    const removed = await store.deleteExpired(now)
    expect(removed.map((l) => l.leaseId).sort()).toEqual(['lease_1', 'lease_2'])
    expect(removed.find((l) => l.leaseId === 'lease_1')).toEqual(gone)
    expect(await store.deleteExpired(now)).toEqual([])
    expect(await store.size()).toBe(1)
    expect(await store.findByRouteToken('rt_1')).toBeUndefined()
    expect(await store.get('lease_3')).toEqual(live)
  })

  test('count: alive at `now`, in total and per owner key hash', async () => {
    const { store } = await kind.make()
    const now = Date.now()
    await store.put(testLease(1, { ownerKeyHash: 'aa' }))
    await store.put(testLease(2, { ownerKeyHash: 'aa' }))
    await store.put(testLease(3, { ownerKeyHash: 'bb' }))
    await store.put(testLease(4, { ownerKeyHash: 'aa', expiresAt: now - 5 }))
    expect(await store.count(now)).toBe(3)
    expect(await store.count(now, 'aa')).toBe(2)
    expect(await store.count(now, 'bb')).toBe(1)
    expect(await store.count(now, 'cc')).toBe(0)
    await store.delete('lease_1')
    expect(await store.count(now, 'aa')).toBe(1)
  })

  test("list: the leases alive at `now` (the status page's rows)", async () => {
    const { store } = await kind.make()
    const now = Date.now()
    await store.put(testLease(1))
    await store.put(testLease(2))
    await store.put(testLease(3, { expiresAt: now - 5 }))
    const listed = await store.list!(now)
    expect(listed.map((l) => l.leaseId).sort()).toEqual(['lease_1', 'lease_2'])
    expect(listed.find((l) => l.leaseId === 'lease_1')).toEqual(
      testLease(1, { createdAt: expect.any(Number), expiresAt: expect.any(Number) }),
    )
  })

  test('a second handle on the same data sees the leases (a restarted relay, or another node)', async () => {
    const { store, twin } = await kind.make()
    await store.put(testLease(1, { ownerKeyHash: 'aa' }))
    const other = twin()
    expect(await other.findByRouteToken('rt_1')).toEqual(
      testLease(1, { ownerKeyHash: 'aa', createdAt: expect.any(Number), expiresAt: expect.any(Number) }),
    )
    expect(await other.count(Date.now(), 'aa')).toBe(1)
  })
})

describe('createRedisLeaseStore', () => {
  test('keeps only hashes, with a key TTL a minute past expiry', async () => {
    const prefix = redis.prefix()
    await using store = createRedisLeaseStore({ redis: redis.url, prefix })
    const lease = testLease(7, { expiresAt: Date.now() + 10_000 })
    await store.put(lease)
    const raw = redis.client()
    const stored = JSON.parse((await raw.get(`${prefix}lease:lease_7`))!) as Record<string, unknown>
    expect(Object.keys(stored).sort()).toEqual(Object.keys(lease).sort())
    expect(JSON.stringify(stored)).not.toMatch(/"(at|wt)_7"/)
    const ttl = await raw.pttl(`${prefix}route:rt_7`)
    expect(ttl).toBeGreaterThan(60_000)
    expect(ttl).toBeLessThanOrEqual(70_000)
  })

  test('adopts a caller-made client and leaves it open on close', async () => {
    const client = redis.client()
    const store = createRedisLeaseStore({ redis: client, prefix: redis.prefix() })
    await store.put(testLease(1))
    await store.close()
    expect(await client.ping()).toBe('PONG')
  })

  test('after close, calls reject and open no connection', async () => {
    const clients = () => redis.connections()
    const before = await clients()
    const store = createRedisLeaseStore({ redis: redis.url, prefix: redis.prefix() })
    await store.close()
    await expect(store.get('x')).rejects.toMatchObject({
      code: SynthTunnelErrorCode.RelayRedis,
      message: /closed/,
    })
    expect(await clients()).toBe(before)
  })

  test('Redis unreachable: calls reject fast with TASKAPP_ERR_SYNTH_RELAY_REDIS', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'taskapp-noredis-'))
    onTestFinished(() => rm(dir, { recursive: true, force: true }))
    await using store = createRedisLeaseStore({ redis: `unix://${join(dir, 'none.sock')}` })
    await expect(store.get('x')).rejects.toMatchObject({ code: SynthTunnelErrorCode.RelayRedis })
  })

  test('a URL of another scheme is refused with TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS', async () => {
    await using store = createRedisLeaseStore({ redis: 'http://127.0.0.1:6379' })
    await expect(store.size()).rejects.toMatchObject({ code: SynthTunnelErrorCode.RelayInvalidOptions })
  })
})
