import type { ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterEach, beforeEach, describe, expect, onTestFinished, test, vi } from 'vitest'
import { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
import type { RelayChildMessage } from '../fixtures/relay-child'
import { forkFixture, nextEvent, startLocalServer, within } from '../test-helpers'
import { synthTunnel } from '../synth-tunnel'
import type { SynthTunnelEvent } from '../agent/agent'
import { createFileLeaseStore } from './file-lease-store'
import { leaseFileError, testLease } from '../test-helpers'
import type { RelayLease } from './lease-store'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const lease = testLease

let dir: string
let file: string

/** The journal's lines, parsed. */
async function journalLines(): Promise<{ seq: number; ops: object[] }[]> {
  const text = await readFile(`${file}.journal`, 'utf8')
  expect(text.endsWith('\n')).toBe(true)
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l) as { seq: number; ops: object[] })
}
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'taskapp-lease-file-'))
  file = join(dir, 'leases.json')
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('createFileLeaseStore', () => {
  test('put/get/find/delete/deleteExpired round-trip through fresh stores reading the same file', async () => {
    const a = createFileLeaseStore(file)
    expect(await a.size()).toBe(0)
    const l1 = lease(1)
    const l2 = lease(2, { localTarget: undefined, expiresAt: Date.now() + 60_000 })
    await a.put(l1)
    await a.put(l2)
    expect(await a.get('lease_1')).toEqual(l1)
    expect(await a.findByRouteToken('rt_2')).toEqual(l2)
    expect(await a.findByAgentTokenHash(sha('at_1'))).toEqual(l1)

    const b = createFileLeaseStore(file)
    expect(await b.size()).toBe(2)
    expect(await b.get('lease_1')).toEqual(l1)
    expect(await b.get('lease_2')).toEqual(l2) // localTarget undefined survives JSON
    expect(await b.findByRouteToken('rt_1')).toEqual(l1)
    expect(await b.findByAgentTokenHash(sha('at_2'))).toEqual(l2)
    expect(await b.findByAgentTokenHash(sha('at_nope'))).toBeUndefined()
    expect(await b.delete('lease_nope')).toBe(false)
    expect(await b.delete('lease_1')).toBe(true)
    expect(await b.get('lease_1')).toBeUndefined()
    expect(await b.findByRouteToken('rt_1')).toBeUndefined()

    const c = createFileLeaseStore(file)
    expect(await c.size()).toBe(1)
    expect(await c.get('lease_1')).toBeUndefined()
    expect(await c.deleteExpired(Date.now())).toEqual([]) // l2 still live
    expect(await c.deleteExpired(l2.expiresAt)).toEqual([l2])
    expect(await c.findByRouteToken('rt_2')).toBeUndefined()

    expect(await createFileLeaseStore(file).size()).toBe(0)
    // No compaction yet: no snapshot, the journal holds one line per change.
    expect(await readdir(dir)).toEqual(['leases.json.journal'])
    const lines = await journalLines()
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4])
    expect(lines.at(-1)).toEqual({ seq: 4, ops: [{ del: 'lease_2' }] })
  })

  test('the journal and the snapshot hold exactly the RelayLease fields; the snapshot is versioned', async () => {
    const store = createFileLeaseStore(file, { compactAfter: 1 })
    const l = lease(3)
    await store.put({ ...l, extra: 'not a lease field' } as RelayLease)
    expect(await journalLines()).toStrictEqual([{ seq: 1, ops: [{ put: l }] }])
    await store.put(lease(4))
    await store.delete('lease_4') // 3 changes > max(1, 2 x 1 live lease): compaction
    await expect.poll(() => readFile(`${file}.journal`, 'utf8')).toBe('') // cut after the snapshot
    expect(JSON.parse(await readFile(file, 'utf8'))).toStrictEqual({ version: 2, seq: 3, leases: [l] })
  })

  test('both files are written with mode 0600, replacing wider ones, and no temp file is left', async () => {
    await writeFile(file, JSON.stringify({ version: 2, seq: 0, leases: [] }), { mode: 0o644 })
    await writeFile(`${file}.journal`, '', { mode: 0o644 })
    await chmod(file, 0o644)
    await chmod(`${file}.journal`, 0o644)
    const store = createFileLeaseStore(file, { compactAfter: 1 })
    await store.put(lease(1))
    expect((await stat(`${file}.journal`)).mode & 0o777).toBe(0o600)
    await store.delete('lease_1') // 2 changes, no live lease: compaction rewrites the snapshot
    await expect.poll(async () => (await stat(file)).mode & 0o777).toBe(0o600)
    await expect.poll(() => readFile(`${file}.journal`, 'utf8')).toBe('')
    expect((await stat(`${file}.journal`)).mode & 0o777).toBe(0o600)
    expect((await readdir(dir)).sort()).toEqual(['leases.json', 'leases.json.journal'])
  })

  test('expired leases are dropped on load', async () => {
    const live = lease(1)
    const expired = lease(2, { expiresAt: Date.now() - 1 })
    await writeFile(file, JSON.stringify({ version: 1, leases: [live, expired] }))
    const store = createFileLeaseStore(file)
    expect(await store.size()).toBe(1)
    expect(await store.get('lease_1')).toEqual(live)
    expect(await store.get('lease_2')).toBeUndefined()
    expect(await store.findByRouteToken('rt_2')).toBeUndefined()
  })

  test('temporary files a crash left beside the files are removed on load, and only those', async () => {
    const stale = ['.leases.json.4242.0a1b2c3d.tmp', '.leases.json.journal.4242.deadbeef.tmp']
    const others = ['.other.json.4242.0a1b2c3d.tmp', '.leases.json.tmp', 'notes.txt']
    for (const f of [...stale, ...others]) await writeFile(join(dir, f), '{')
    const store = createFileLeaseStore(file)
    expect(await store.size()).toBe(0)
    expect((await readdir(dir)).sort()).toEqual([...others].sort())
  })

  test('a missing file is an empty store; nothing is written until a change', async () => {
    const store = createFileLeaseStore(file)
    expect(await store.size()).toBe(0)
    expect(await store.deleteExpired(Date.now())).toEqual([])
    expect(await readdir(dir)).toEqual([])
  })

  test.each([
    ['not JSON', '{"version": 1, "leases": [', /not JSON/],
    ['no leases array', '{"version": 1}', /no "leases" array/],
    ['another version', '{"version": 3, "seq": 0, "leases": []}', /format version 3/],
    ['a version 2 snapshot without seq', '{"version": 2, "leases": []}', /no "seq"/],
    ['a lease lacking a field', JSON.stringify({ version: 1, leases: [{ leaseId: 'x' }] }), /lease #0/],
    [
      'a wrong localTarget',
      JSON.stringify({ version: 1, leases: [{ ...lease(1), localTarget: 'here' }] }),
      /lease #0/,
    ],
  ])(
    'a corrupt file (%s) throws TASKAPP_ERR_SYNTH_RELAY_LEASE_FILE saying what to do',
    async (_, text, why) => {
      await writeFile(file, text)
      const err = leaseFileError(() => createFileLeaseStore(file))
      expect(err.message).toContain(file)
      expect(err.message).toMatch(why)
      expect(err.message).toMatch(/Move it away or delete it/)
    },
  )

  test('an unreadable path or a missing directory throws TASKAPP_ERR_SYNTH_RELAY_LEASE_FILE', async () => {
    const asDir = leaseFileError(() => createFileLeaseStore(dir)) // a directory: EISDIR
    expect(asDir.message).toMatch(/cannot be read \(EISDIR\)/)
    const noDir = leaseFileError(() => createFileLeaseStore(join(dir, 'missing', 'leases.json')))
    expect(noDir.message).toMatch(/does not exist or is not writable\. Create it/)
  })

  test('concurrent changes are all persisted (writes do not interleave)', async () => {
    const store = createFileLeaseStore(file)
    // All calls are made before any write finishes (Promise.resolve only types the results).
    await Promise.all(Array.from({ length: 40 }, (_, i) => Promise.resolve(store.put(lease(i)))))
    await Promise.all(
      [store.delete('lease_0'), store.put(lease(40)), store.delete('lease_1')].map((p) => Promise.resolve(p)),
    )
    const fresh = createFileLeaseStore(file)
    expect(await fresh.size()).toBe(39)
    for (let i = 2; i <= 40; i++) expect(await fresh.get(`lease_${i}`)).toEqual(await store.get(`lease_${i}`))
    expect(await readdir(dir)).toEqual(['leases.json.journal'])
    // Group commit: the 40 puts made together share one line (one write, one fsync), the 3 others the next.
    expect((await journalLines()).map((l) => l.ops.length)).toEqual([40, 3])
  })

  test('a failed write rejects with the typed error and undoes the put', async () => {
    const sub = join(dir, 'sub')
    await mkdir(sub)
    const store = createFileLeaseStore(join(sub, 'leases.json'))
    await rm(sub, { recursive: true })
    const err = await Promise.resolve(store.put(lease(1))).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(SynthTunnelError)
    expect((err as SynthTunnelError).code).toBe(SynthTunnelErrorCode.RelayLeaseFile)
    expect((err as SynthTunnelError).message).toMatch(/could not be written \(ENOENT\)/)
    expect(await store.get('lease_1')).toBeUndefined()
    expect(await store.size()).toBe(0)
  })
})

// ---- relay crash and restart, with the relay in a child process

interface RelayChild {
  child: ChildProcess
  /** Bind the port (creating the lease store first); resolves with the port and when it was bound. */
  start(): Promise<{ port: number; url: string; at: number }>
}

/** Fork a relay child and wait until its modules are loaded (it binds only on `start()`). */
async function forkRelay(port: number, leaseFile: string | undefined): Promise<RelayChild> {
  const child = forkFixture('relay-child.ts', [String(port), leaseFile ?? '-'])
  const loaded = await nextEvent<RelayChildMessage>(child, 'message', 30_000)
  expect(loaded.type).toBe('loaded')
  return {
    child,
    async start() {
      const reply = nextEvent<RelayChildMessage>(child, 'message', 10_000)
      child.send({ type: 'start' })
      const msg = await reply
      if (msg.type !== 'listening') throw new Error(`relay child did not start: ${JSON.stringify(msg)}`)
      return msg
    },
  }
}

/** SIGKILL: a real crash, no close frames, no lease cleanup. */
async function crash(relay: RelayChild): Promise<void> {
  const exited = once(relay.child, 'exit')
  relay.child.kill('SIGKILL')
  const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null]
  expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' })
}

async function startApp() {
  let n = 0
  return startLocalServer((req, res) => {
    n += 1
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ n, path: req.url }))
  })
}

async function openTunnel(relayUrl: string, target: { localUrl: string; port: number; host: string }) {
  const events: (SynthTunnelEvent & { at: number })[] = []
  const tunnel = await synthTunnel({
    backendUrl: relayUrl,
    apiKey: 'k',
    env: {},
    localApiKeys: [],
    onEvent: (e) => events.push({ ...e, at: Date.now() }),
  }).open(target)
  onTestFinished(() => tunnel.close())
  return { tunnel, events }
}

describe('a relay restarted after a crash (relay in a child process)', () => {
  test(
    'with the same lease file on the same port, the agent reconnects and the same URL and worker token work',
    { timeout: 60_000 },
    async () => {
      await using app = await startApp()
      const first = await forkRelay(0, file)
      const { port, url: relayUrl } = await first.start()
      const { tunnel, events } = await openTunnel(relayUrl, app.target)
      const before = await request(`${tunnel.url}/before`, { headers: tunnel.headers })
      expect(before.statusCode).toBe(200)
      expect(await before.body.json()).toEqual({ n: 1, path: '/before' })
      expect(events.filter((e) => e.type === 'connected')).toHaveLength(1)

      // The replacement is forked and warm before the crash, as a supervisor's restart would be.
      const second = await forkRelay(port, file)
      await crash(first)
      await expect
        .poll(() => events.map((e) => e.type), { timeout: 5_000, interval: 5 })
        .toContain('disconnected')
      expect(tunnel.connected).toBe(false)

      const restarted = await second.start()
      expect(restarted.port).toBe(port)
      const reconnected = await vi.waitFor(
        () => {
          const connected = events.find((e) => e.type === 'connected' && e.connection === 2)
          expect(connected, 'the agent to reconnect').toBeDefined()
          return connected!
        },
        { timeout: 10_000, interval: 5 },
      )
      const reconnectMs = reconnected.at - restarted.at
      console.log(`[file-lease-store] agent reconnected ${reconnectMs} ms after the restarted relay listened`)
      expect(reconnectMs).toBeLessThan(2_000)
      expect(tunnel.connected).toBe(true)
      expect(tunnel.error).toBeUndefined()

      const after = await request(`${tunnel.url}/after`, { headers: tunnel.headers })
      expect(after.statusCode).toBe(200)
      expect(await after.body.json()).toEqual({ n: 2, path: '/after' })
      const noToken = await request(`${tunnel.url}/after`)
      expect(noToken.statusCode).toBe(401)
      await noToken.body.dump()

      // close() deletes the lease on the restarted relay (the owner key hash was persisted too).
      await tunnel.close()
      expect(await createFileLeaseStore(file).size()).toBe(0)
      expect(events.some((e) => e.type === 'closed' && e.error !== undefined)).toBe(false)
    },
  )

  test(
    'without a lease file (memory store), the restarted relay no longer knows the lease: closed settles with LEASE_GONE',
    { timeout: 60_000 },
    async () => {
      await using app = await startApp()
      const first = await forkRelay(0, undefined)
      const { port, url: relayUrl } = await first.start()
      const { tunnel, events } = await openTunnel(relayUrl, app.target)
      const before = await request(`${tunnel.url}/before`, { headers: tunnel.headers })
      expect(before.statusCode).toBe(200)
      await before.body.dump()

      const second = await forkRelay(port, undefined)
      await crash(first)
      await expect
        .poll(() => events.map((e) => e.type), { timeout: 5_000, interval: 5 })
        .toContain('disconnected')
      expect(tunnel.error).toBeUndefined() // a dropped connection alone is not fatal
      await second.start()

      await within(tunnel.closed, 10_000, 'tunnel.closed')
      expect(tunnel.error).toBeInstanceOf(SynthTunnelError)
      expect(tunnel.error?.code).toBe(SynthTunnelErrorCode.LeaseGone)
      expect(tunnel.error?.status).toBe(401)
      const closed = events.find((e) => e.type === 'closed')
      expect(closed?.type === 'closed' && closed.error?.code).toBe(SynthTunnelErrorCode.LeaseGone)
      expect(events.filter((e) => e.type === 'connected')).toHaveLength(1)

      const after = await request(`${tunnel.url}/after`, { headers: tunnel.headers })
      expect(after.statusCode).toBe(404)
      expect(((await after.body.json()) as { code: string }).code).toBe('TUNNEL_NOT_FOUND')
    },
  )
})
