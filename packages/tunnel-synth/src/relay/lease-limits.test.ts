/* eslint-disable @typescript-eslint/no-explicit-any -- lease answers are untyped JSON in these tests */
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { Readable } from 'node:stream'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { describe, expect, onTestFinished, test } from 'vitest'
import { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
import { startLocalServer } from '../test-helpers'
import { synthTunnel } from '../synth-tunnel'
import { createFileLeaseStore } from './file-lease-store'
import { createMemoryLeaseStore } from './lease-store'
import type { LeaseStore, RelayLease } from './lease-store'
import { relayOptionsFromEnv } from './options-from-env'
import { createRelayServer } from './relay-server'
import type { RelayServerOptions } from './relay-server'

function client(): Agent {
  const dispatcher = new Agent({ connections: 32 })
  onTestFinished(() => dispatcher.close())
  return dispatcher
}

const LEASES = '/api/v1/synthtunnel/leases'
const GOOD_TARGET = { host: '127.0.0.1', port: 8114 }

interface Answer {
  status: number
  type: string | undefined
  body: Record<string, any>
  text: string
}

/** `POST …/leases` with `key` and `body` (an object is sent as JSON); the answer, parsed. */
async function postLease(
  relayUrl: string,
  key: string,
  dispatcher: Agent,
  body: unknown = { client_instance_id: 'c', local_target: GOOD_TARGET },
): Promise<Answer> {
  const res = await request(`${relayUrl}${LEASES}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    dispatcher,
  })
  const text = await res.body.text()
  const type = res.headers['content-type'] as string | undefined
  return { status: res.statusCode, type, body: JSON.parse(text) as Record<string, any>, text }
}

async function deleteLease(relayUrl: string, key: string, id: string, dispatcher: Agent): Promise<number> {
  const res = await request(`${relayUrl}${LEASES}/${id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${key}` },
    dispatcher,
  })
  await res.body.dump()
  return res.statusCode
}

async function relay(options: RelayServerOptions) {
  const r = await createRelayServer(options)
  onTestFinished(() => r.close())
  return r
}

const statuses = (answers: Answer[]) => answers.map((a) => a.status).sort()

describe('lease caps: one tenant cannot starve the others', () => {
  test('a key flooding lease creation gets 429 TUNNEL_LEASES_PER_KEY_LIMIT past maxLeasesPerKey; another key still gets leases', async () => {
    const store = createMemoryLeaseStore()
    const r = await relay({ apiKeys: ['flood', 'other'], maxLeasesPerKey: 5, leaseStore: store })
    const dispatcher = client()
    // 40 concurrent creates, as a flooding client sends them
    const flood = await Promise.all(Array.from({ length: 40 }, () => postLease(r.url, 'flood', dispatcher)))
    expect(statuses(flood)).toEqual([...Array<number>(5).fill(201), ...Array<number>(35).fill(429)])
    const refused = flood.find((a) => a.status === 429)!
    expect(refused.type).toBe('application/problem+json')
    expect(refused.body).toMatchObject({
      status: 429,
      code: 'TUNNEL_LEASES_PER_KEY_LIMIT',
      detail: expect.stringMatching(/5 leases.*maxLeasesPerKey.*TASKAPP_RELAY_MAX_LEASES_PER_KEY/s),
    })
    expect(refused.body.detail).toMatch(/[Dd]elete/)
    expect(await store.size()).toBe(5)
    // the other tenant is not starved
    expect((await postLease(r.url, 'other', dispatcher)).status).toBe(201)
    expect(await store.count(Date.now())).toBe(6)
  })

  test('the caps hold under concurrent creations with an asynchronous store (a shared database)', async () => {
    const inner = createMemoryLeaseStore()
    const later = <T>(fn: () => T | Promise<T>) =>
      new Promise<T>((resolve, reject) => setImmediate(() => Promise.resolve(fn()).then(resolve, reject)))
    // every call answers on a later turn of the event loop, as a network round trip would
    const store: LeaseStore = {
      put: (l) => later(() => inner.put(l)),
      get: (id) => later(() => inner.get(id)),
      findByRouteToken: (rt) => later(() => inner.findByRouteToken(rt)),
      findByAgentTokenHash: (h) => later(() => inner.findByAgentTokenHash(h)),
      delete: (id) => later(() => inner.delete(id)),
      deleteExpired: (now) => later(() => inner.deleteExpired(now)),
      size: () => later(() => inner.size()),
      count: (now, owner) => later(() => inner.count(now, owner)),
    }
    const r = await relay({ apiKeys: ['a', 'b'], maxLeasesPerKey: 5, maxLeases: 8, leaseStore: store })
    const dispatcher = client()
    const first = await Promise.all(Array.from({ length: 30 }, () => postLease(r.url, 'a', dispatcher)))
    expect(statuses(first)).toEqual([...Array<number>(5).fill(201), ...Array<number>(25).fill(429)])
    const second = await Promise.all(Array.from({ length: 30 }, () => postLease(r.url, 'b', dispatcher)))
    expect(statuses(second)).toEqual([...Array<number>(3).fill(201), ...Array<number>(27).fill(429)])
    expect(await inner.size()).toBe(8)
  })

  test('the total cap maxLeases holds across keys: 429 TUNNEL_LEASES_LIMIT', async () => {
    const r = await relay({ apiKeys: ['a', 'b', 'c'], maxLeases: 7, maxLeasesPerKey: 4 })
    const dispatcher = client()
    const answers = await Promise.all(
      ['a', 'b', 'c'].flatMap((k) => Array.from({ length: 4 }, () => postLease(r.url, k, dispatcher))),
    )
    expect(statuses(answers)).toEqual([...Array<number>(7).fill(201), ...Array<number>(5).fill(429)])
    const totalRefusals = answers.filter((a) => a.body.code === 'TUNNEL_LEASES_LIMIT')
    expect(totalRefusals.length).toBeGreaterThan(0)
    expect(totalRefusals[0]!.type).toBe('application/problem+json')
    expect(totalRefusals[0]!.body.detail).toMatch(/7 leases.*maxLeases.*TASKAPP_RELAY_MAX_LEASES\b/s)
  })

  test('DELETE frees a slot', async () => {
    const r = await relay({ apiKeys: ['k'], maxLeasesPerKey: 2 })
    const dispatcher = client()
    const first = await postLease(r.url, 'k', dispatcher)
    expect((await postLease(r.url, 'k', dispatcher)).status).toBe(201)
    expect((await postLease(r.url, 'k', dispatcher)).status).toBe(429)
    expect(await deleteLease(r.url, 'k', first.body.lease_id as string, dispatcher)).toBe(204)
    expect((await postLease(r.url, 'k', dispatcher)).status).toBe(201)
    expect((await postLease(r.url, 'k', dispatcher)).status).toBe(429)
  })

  test('an expired lease frees its slot', async () => {
    const r = await relay({ apiKeys: ['k'], maxLeasesPerKey: 2, leaseTtlSeconds: 3600 })
    const dispatcher = client()
    const short = { client_instance_id: 'c', local_target: GOOD_TARGET, requested_ttl_seconds: 1 }
    expect((await postLease(r.url, 'k', dispatcher, short)).status).toBe(201)
    expect((await postLease(r.url, 'k', dispatcher)).status).toBe(201)
    expect((await postLease(r.url, 'k', dispatcher)).status).toBe(429)
    // once the 1 s lease has expired, there is room for exactly one more
    await expect
      .poll(async () => (await postLease(r.url, 'k', dispatcher)).status, { timeout: 5_000, interval: 100 })
      .toBe(201)
    expect((await postLease(r.url, 'k', dispatcher)).status).toBe(429)
  })

  test('leases loaded from the lease file after a restart count', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'taskapp-lease-caps-'))
    onTestFinished(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'leases.json')
    const dispatcher = client()
    const options = { apiKeys: ['a', 'b'], maxLeasesPerKey: 3, maxLeases: 5 }
    const first = await createRelayServer({ ...options, leaseStore: createFileLeaseStore(file) })
    try {
      for (let i = 0; i < 3; i += 1) expect((await postLease(first.url, 'a', dispatcher)).status).toBe(201)
      expect((await postLease(first.url, 'b', dispatcher)).status).toBe(201)
    } finally {
      await first.close()
    }
    const second = await relay({ ...options, leaseStore: createFileLeaseStore(file) })
    const refused = await postLease(second.url, 'a', dispatcher)
    expect(refused.status).toBe(429)
    expect(refused.body.code).toBe('TUNNEL_LEASES_PER_KEY_LIMIT')
    expect((await postLease(second.url, 'b', dispatcher)).status).toBe(201)
    const full = await postLease(second.url, 'b', dispatcher)
    expect(full.status).toBe(429)
    expect(full.body.code).toBe('TUNNEL_LEASES_LIMIT')
  })

  test('synthTunnel().open() over the cap rejects with TASKAPP_ERR_SYNTH_USAGE_LIMIT and the relay says what to do', async () => {
    const r = await relay({ apiKeys: ['k'], maxLeasesPerKey: 1 })
    await using app = await startLocalServer((_req, res) => res.end('ok'))
    const backend = synthTunnel({ backendUrl: r.url, apiKey: 'k', env: {} })
    await using first = await backend.open(app.target)
    expect(first.url).toContain('/s/rt_')
    const err = await backend.open(app.target).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(SynthTunnelError)
    expect((err as SynthTunnelError).code).toBe(SynthTunnelErrorCode.UsageLimit)
    expect((err as SynthTunnelError).status).toBe(429)
    expect((err as Error).message).toMatch(/maxLeasesPerKey/)
  })
})

describe('local_target is validated on lease creation', () => {
  test('a 60 kB local_target.host is refused with 400 naming the field, and nothing is stored', async () => {
    const store = createMemoryLeaseStore()
    const r = await relay({ apiKeys: ['k'], leaseStore: store })
    const dispatcher = client()
    const huge = { client_instance_id: 'c', local_target: { host: 'a'.repeat(60_000), port: 8114 } }
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => postLease(r.url, 'k', dispatcher, huge)),
    )
    for (const a of answers) {
      expect(a.status).toBe(400)
      expect(a.type).toBe('application/problem+json')
      expect(a.body).toMatchObject({ code: 'TUNNEL_INVALID_LOCAL_TARGET' })
      expect(a.body.detail).toMatch(/local_target\.host.*253/s)
      expect(a.text.length).toBeLessThan(1_000) // the host is not echoed back
    }
    expect(await store.size()).toBe(0)
  })

  test.each([
    ['an empty host', 'local_target.host', { host: '', port: 80 }],
    [
      'a 254-character host',
      'local_target.host',
      { host: `${'a'.repeat(63)}.`.repeat(4).slice(0, 254), port: 80 },
    ],
    ['a label of 64 characters', 'local_target.host', { host: `${'a'.repeat(64)}.example`, port: 80 }],
    ['a space in the host', 'local_target.host', { host: 'my host', port: 80 }],
    ['a label starting with -', 'local_target.host', { host: '-app.internal', port: 80 }],
    ['a label ending with -', 'local_target.host', { host: 'app-.internal', port: 80 }],
    ['an empty label', 'local_target.host', { host: 'app..internal', port: 80 }],
    ['a URL', 'local_target.host', { host: 'http://127.0.0.1', port: 80 }],
    ['an unclosed bracket', 'local_target.host', { host: '[::1', port: 80 }],
    ['a bad IPv6 literal', 'local_target.host', { host: '[::1::2]', port: 80 }],
    ['a host that is not a string', 'local_target.host', { host: 127, port: 80 }],
    ['port 0', 'local_target.port', { host: 'localhost', port: 0 }],
    ['port 65536', 'local_target.port', { host: 'localhost', port: 65_536 }],
    ['a fractional port', 'local_target.port', { host: 'localhost', port: 80.5 }],
    ['a port string', 'local_target.port', { host: 'localhost', port: '80' }],
    ['a missing port', 'local_target.port', { host: 'localhost' }],
    ['a local_target that is not an object', 'local_target', 'localhost:80'],
  ] as const)('%s → 400 TUNNEL_INVALID_LOCAL_TARGET naming %s', async (_name, field, target) => {
    const store = createMemoryLeaseStore()
    const r = await relay({ apiKeys: ['k'], leaseStore: store })
    const a = await postLease(r.url, 'k', client(), { client_instance_id: 'c', local_target: target })
    expect(a.status).toBe(400)
    expect(a.type).toBe('application/problem+json')
    expect(a.body.code).toBe('TUNNEL_INVALID_LOCAL_TARGET')
    expect(a.body.detail).toContain(`${field} `)
    expect(await store.size()).toBe(0)
  })

  test('what agents send is accepted: localhost, IPv4, IPv6 with or without brackets, DNS names up to 253 characters', async () => {
    const r = await relay({ apiKeys: ['k'] })
    const dispatcher = client()
    const longest = [61, 63, 63, 63].map((n) => 'a'.repeat(n)).join('.')
    expect(longest).toHaveLength(253)
    const hosts = [
      'localhost',
      '127.0.0.1',
      '::1',
      '[::1]',
      'fe80::1%eth0',
      'task-app.internal',
      'task_app',
      'host.docker.internal.',
      longest,
    ]
    for (const host of hosts) {
      const a = await postLease(r.url, 'k', dispatcher, { local_target: { host, port: 65_535 } })
      expect([host, a.status]).toEqual([host, 201])
    }
    // a body without local_target is accepted as before (the relay does not use it to route)
    expect((await postLease(r.url, 'k', dispatcher, {})).status).toBe(201)
  })
})

describe('the lease request body is capped at 64 KiB', () => {
  test.each([
    ['declared (Content-Length)', 100_000, false],
    ['declared, 10 MB', 10_000_000, false],
    ['streamed (chunked)', 1_000_000, true],
  ])('%s: %i bytes → 413 TUNNEL_PAYLOAD_TOO_LARGE, and nothing is stored', async (_name, size, chunked) => {
    const store = createMemoryLeaseStore()
    const r = await relay({ apiKeys: ['k'], leaseStore: store })
    const json = JSON.stringify({ local_target: GOOD_TARGET, metadata: { pad: 'x'.repeat(size) } })
    const res = await request(`${r.url}${LEASES}`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: chunked ? Readable.from([json.slice(0, 1000), json.slice(1000)]) : json,
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(413)
    expect(res.headers['content-type']).toBe('application/problem+json')
    expect(await res.body.json()).toMatchObject({
      code: 'TUNNEL_PAYLOAD_TOO_LARGE',
      detail: expect.stringContaining('64 KiB'),
    })
    expect(await store.size()).toBe(0)
  })
})

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
function lease(n: number, owner: string, expiresAt: number): RelayLease {
  return {
    leaseId: `lease_${n}`,
    routeToken: `rt_${n}`,
    agentTokenHash: sha(`at_${n}`),
    workerTokenHash: sha(`wt_${n}`),
    ownerKeyHash: sha(owner),
    clientInstanceId: '',
    localTarget: undefined,
    createdAt: 0,
    expiresAt,
  }
}

describe('LeaseStore.count', () => {
  test.each([
    ['memory', () => createMemoryLeaseStore()],
    [
      'file',
      async () => {
        const dir = await mkdtemp(join(tmpdir(), 'taskapp-lease-count-'))
        onTestFinished(() => rm(dir, { recursive: true, force: true }))
        return createFileLeaseStore(join(dir, 'leases.json'))
      },
    ],
  ] as const)('%s store: counts leases alive at `now`, in total or of one owner', async (_name, make) => {
    const store: LeaseStore = await make()
    const now = 1_000_000
    await store.put(lease(1, 'a', now + 1))
    await store.put(lease(2, 'a', now)) // expires at `now`: not alive
    await store.put(lease(3, 'b', now + 60_000))
    await store.put(lease(4, 'a', now - 1))
    expect(await store.count(now)).toBe(2)
    expect(await store.count(now, sha('a'))).toBe(1)
    expect(await store.count(now, sha('b'))).toBe(1)
    expect(await store.count(now, sha('nobody'))).toBe(0)
    expect(await store.count(now - 10)).toBe(4)
    await store.delete('lease_3')
    expect(await store.count(now, sha('b'))).toBe(0)
  })
})

describe('lease cap options', () => {
  test.each([
    ['maxLeases 0', { maxLeases: 0 }, /maxLeases must be a positive integer/],
    ['maxLeases 1.5', { maxLeases: 1.5 }, /maxLeases must be a positive integer/],
    ['maxLeasesPerKey -1', { maxLeasesPerKey: -1 }, /maxLeasesPerKey must be a positive integer/],
    ['maxLeasesPerKey NaN', { maxLeasesPerKey: Number.NaN }, /maxLeasesPerKey must be a positive integer/],
  ] as const)('%s → TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS', async (_name, options, message) => {
    const err = await createRelayServer({ apiKeys: ['k'], ...options }).then(
      async (r) => (await r.close(), undefined),
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(SynthTunnelError)
    expect(err).toMatchObject({
      code: SynthTunnelErrorCode.RelayInvalidOptions,
      message: expect.stringMatching(message),
    })
  })

  test('relayOptionsFromEnv reads TASKAPP_RELAY_MAX_LEASES and TASKAPP_RELAY_MAX_LEASES_PER_KEY', () => {
    expect(
      relayOptionsFromEnv({ TASKAPP_RELAY_MAX_LEASES: '500', TASKAPP_RELAY_MAX_LEASES_PER_KEY: '20' }),
    ).toEqual({ maxLeases: 500, maxLeasesPerKey: 20 })
    for (const [name, raw] of [
      ['TASKAPP_RELAY_MAX_LEASES', '1.5'],
      ['TASKAPP_RELAY_MAX_LEASES_PER_KEY', '0'],
      ['TASKAPP_RELAY_MAX_LEASES_PER_KEY', 'lots'],
    ] as const) {
      expect(() => relayOptionsFromEnv({ [name]: raw })).toThrow(
        expect.objectContaining({
          code: SynthTunnelErrorCode.RelayInvalidOptions,
          message: expect.stringContaining(`${name} must be a positive integer`),
        }),
      )
    }
  })
})
