import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { appendFile, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, onTestFinished, test, vi } from 'vitest'
import type { SynthTunnelError } from '../errors'
import { SynthTunnelErrorCode } from '../errors'
import { fixtureLease } from '../fixtures/fixture-lease'
import { createFileLeaseStore } from './file-lease-store'
import { leaseFileError, testLease } from '../test-helpers'

const lease = testLease

let dir: string
let file: string
let journal: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'taskapp-lease-journal-'))
  file = join(dir, 'leases.json')
  journal = `${file}.journal`
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 })
})

/** The journal's text, checked to be whole lines of JSON. */
async function wholeJournal(): Promise<{ seq: number; ops: object[] }[]> {
  const text = await readFile(journal, 'utf8')
  if (text === '') return []
  expect(text.endsWith('\n'), 'the journal ends with a whole line').toBe(true)
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l) as { seq: number; ops: object[] })
}

const line = (seq: number, ops: object[]) => `${JSON.stringify({ seq, ops })}\n`

describe('torn and corrupt journals', () => {
  test.each([
    ['half a line', (l: string) => l.slice(0, 200)],
    ['a whole line without its newline', (l: string) => l.slice(0, -1)],
    ['zeros, newline-terminated', (l: string) => `${'\0'.repeat(l.length - 1)}\n`],
  ])('a torn last line (%s) is left out, and cut before the next append', async (_, tear) => {
    const [l1, l2, l3] = [lease(1), lease(2), lease(3)]
    const a = createFileLeaseStore(file)
    await a.put(l1)
    await a.put(l2)
    await appendFile(journal, tear(line(3, [{ put: l3 }])))

    const b = createFileLeaseStore(file)
    expect(await b.size()).toBe(2)
    expect(await b.get('lease_3')).toBeUndefined()
    await b.delete('lease_2') // a line shorter than the torn one: what is left of that must go
    expect(await wholeJournal()).toEqual([
      { seq: 1, ops: [{ put: l1 }] },
      { seq: 2, ops: [{ put: l2 }] },
      { seq: 3, ops: [{ del: 'lease_2' }] },
    ])
    const c = createFileLeaseStore(file)
    expect([await c.get('lease_1'), await c.get('lease_2'), await c.get('lease_3')]).toEqual([
      l1,
      undefined,
      undefined,
    ])
  })

  test.each([
    [
      'a line in the middle that is not JSON',
      [line(1, []), 'oops\n', line(2, [])],
      /journal line 2 is not JSON/,
    ],
    [
      'a last line of JSON that is no change',
      [line(1, []), '{"seq":2}\n'],
      /journal line 2 is not a \{"seq","ops"\}/,
    ],
    [
      'a put of half a lease',
      [line(1, [{ put: { leaseId: 'x' } }])],
      /journal line 1 is a change that is neither/,
    ],
    ['a gap in seq', [line(1, []), line(3, [])], /journal line 2 has seq 3 where 2 belongs/],
    ['a journal that starts after its snapshot', [line(7, [])], /journal line 1 has seq 7 where at most 1/],
  ])(
    'a corrupt journal (%s) throws TASKAPP_ERR_SYNTH_RELAY_LEASE_FILE saying what to do',
    async (_, lines, why) => {
      await writeFile(journal, lines.join(''))
      const err = leaseFileError(() => createFileLeaseStore(file))
      expect(err.message).toContain(journal)
      expect(err.message).toMatch(why)
      expect(err.message).toMatch(/Move it away or delete it, with .*leases\.json, to start with no leases/)
    },
  )

  test('a crash between the snapshot and the cut of the journal: lines up to the snapshot are skipped', async () => {
    const [l1, l2, l3] = [lease(1), lease(2), lease(3)]
    // Snapshot at seq 2 (l1 put, l2 put); journal still holds lines 1-2, then line 3 (del l1, put l3).
    await writeFile(file, JSON.stringify({ version: 2, seq: 2, leases: [l1, l2] }))
    await writeFile(
      journal,
      line(1, [{ put: l1 }]) + line(2, [{ put: l2 }]) + line(3, [{ del: 'lease_1' }, { put: l3 }]),
    )
    const store = createFileLeaseStore(file)
    expect([await store.get('lease_1'), await store.get('lease_2'), await store.get('lease_3')]).toEqual([
      undefined,
      l2,
      l3,
    ])
    await store.put(lease(4))
    expect((await wholeJournal()).map((l) => l.seq)).toEqual([1, 2, 3, 4])

    // Journal wholly in the snapshot: it is cut at the next append, which follows the snapshot.
    await writeFile(file, JSON.stringify({ version: 2, seq: 3, leases: [l2, l3] }))
    await writeFile(journal, line(2, [{ put: l2 }]) + line(3, [{ put: l3 }]))
    const again = createFileLeaseStore(file)
    expect(await again.size()).toBe(2)
    await again.delete('lease_2')
    expect(await wholeJournal()).toEqual([{ seq: 4, ops: [{ del: 'lease_2' }] }])
    expect(await createFileLeaseStore(file).size()).toBe(1)
  })
})

describe('compaction', () => {
  test('once the journal outgrows the live leases: the snapshot holds them, the journal shrinks, nothing is lost', async () => {
    const store = createFileLeaseStore(file, { compactAfter: 10 })
    const kept = Array.from({ length: 8 }, (_, i) => lease(i))
    for (const l of kept) await store.put(l)
    for (let i = 100; i < 130; i++) await store.put(lease(i))
    const beforeBytes = (await stat(journal)).size
    // 38 changes do not exceed max(10, 2 x 38 live); 30 deletes more (68 > 2 x 8) do.
    await Promise.all(Array.from({ length: 30 }, (_, i) => Promise.resolve(store.delete(`lease_${100 + i}`))))
    // Changes made while the snapshot is being written stay in the journal after the cut.
    const during = [lease(200), lease(201)]
    await Promise.all(during.map((l) => Promise.resolve(store.put(l))))
    await store.delete('lease_0')

    await expect.poll(async () => (await stat(file).catch(() => undefined))?.size ?? 0).toBeGreaterThan(0)
    await expect.poll(async () => (await stat(journal)).size).toBeLessThan(beforeBytes / 4)
    const snapshot = JSON.parse(await readFile(file, 'utf8')) as {
      version: number
      seq: number
      leases: unknown[]
    }
    expect(snapshot.version).toBe(2)
    expect((await wholeJournal()).every((l) => l.seq > snapshot.seq)).toBe(true)
    expect((await stat(file)).size + (await stat(journal)).size).toBeLessThan(beforeBytes / 2)

    const fresh = createFileLeaseStore(file)
    const live = [...kept.slice(1), ...during]
    expect(await fresh.size()).toBe(live.length)
    for (const l of live) expect(await fresh.get(l.leaseId)).toEqual(l)
    expect(await fresh.get('lease_0')).toBeUndefined()
    expect(await fresh.findByRouteToken('rt_105')).toBeUndefined()
  })

  test('compactAfter must be a positive integer', () => {
    for (const compactAfter of [0, -1, 1.5, Number.NaN]) {
      const err = (() => {
        try {
          createFileLeaseStore(file, { compactAfter })
        } catch (e) {
          return e as SynthTunnelError
        }
      })()
      expect(err?.code).toBe(SynthTunnelErrorCode.RelayInvalidOptions)
      expect(err?.message).toMatch(/compactAfter must be a positive integer/)
    }
  })
})

describe('the single-file format of version 1', () => {
  test('is read and rewritten as a version-2 snapshot on load (0600), expired leases dropped', async () => {
    const live = [lease(1), lease(2, { localTarget: undefined })]
    const stored = live.map((l) => ({ ...l, localTarget: l.localTarget ?? null }))
    const expired = { ...lease(3, { expiresAt: Date.now() - 1 }), localTarget: null }
    await writeFile(file, JSON.stringify({ version: 1, leases: [...stored, expired] }), { mode: 0o644 })
    const store = createFileLeaseStore(file)
    expect(await store.size()).toBe(2)
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ version: 2, seq: 0, leases: stored })
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    await store.put(lease(4))
    const fresh = createFileLeaseStore(file)
    for (const l of [...live, await store.get('lease_4')]) expect(await fresh.get(l!.leaseId)).toEqual(l)
    expect(await fresh.size()).toBe(3)
  })
})

/** Bytes this process has passed to write(2) so far (Linux `/proc/self/io`, `wchar`). */
async function bytesWritten(): Promise<number> {
  const io = await readFile('/proc/self/io', 'utf8')
  const m = /^wchar: (\d+)$/m.exec(io)
  if (!m) throw new Error(`no wchar in /proc/self/io: ${io}`)
  return Number(m[1])
}

describe('the cost of persisting a change', () => {
  test('does not grow with the number of leases: put #300 writes about what put #3 writes', async () => {
    const store = createFileLeaseStore(file)
    const costs = new Map<number, number>()
    for (let i = 1; i <= 300; i++) {
      const before = await bytesWritten()
      await store.put(lease(i))
      costs.set(i, (await bytesWritten()) - before)
    }
    const early = costs.get(3)!
    const late = costs.get(300)!
    expect(early).toBeGreaterThan(0)
    // A full rewrite writes every lease again (about 300 x 450 bytes); a journal, one line.
    expect(late, `bytes written by put #3: ${early}, by put #300: ${late}`).toBeLessThan(2 * early + 1024)
  })
})

// ---- a writer in a child process, killed or cut short

interface Writer {
  /** Whole stdout lines so far. */
  lines: string[]
  exited: Promise<[number | null, NodeJS.Signals | null]>
  kill(): Promise<void>
}

/** Runs `fixtures/lease-writer-child.ts <file> ...args`, under `ulimit -f <limitKiB>` if given. */
function spawnWriter(args: string[], limitKiB?: number): Writer {
  const fixture = fileURLToPath(new URL('../fixtures/lease-writer-child.ts', import.meta.url))
  const node = [process.execPath, '--conditions=@taskapp/source', '--import', 'tsx', fixture, file, ...args]
  const [cmd, ...argv] =
    limitKiB === undefined ? node : ['bash', '-c', `ulimit -f ${limitKiB} && exec "$@"`, 'bash', ...node]
  const child = spawn(cmd!, argv, {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const lines: string[] = []
  let partial = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop()!
    lines.push(...parts)
  })
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await exited
  }
  onTestFinished(kill)
  return { lines, exited, kill }
}

const idsOf = (lines: string[], tag: string) =>
  new Set(lines.filter((l) => l.startsWith(`${tag} `)).map((l) => Number(l.split(' ')[1])))

describe('a writer process killed with SIGKILL mid-stream', () => {
  test(
    'every change it acknowledged is there after a restart (3 crashes in a row, compacting all along)',
    { timeout: 120_000 },
    async () => {
      const WORKERS = 4
      /** Lease id to whether it must be there; ids unacknowledged at a kill are fixed by the next load. */
      const expected = new Map<number, boolean>()
      for (const round of [0, 1, 2]) {
        const first = round * 10_000
        const writer = spawnWriter(['loop', String(first), String(WORKERS), '8'])
        await vi.waitFor(() => expect(idsOf(writer.lines, 'P').size).toBeGreaterThanOrEqual(150), {
          timeout: 60_000,
          interval: 5,
        })
        await writer.kill()
        expect((await writer.exited)[1]).toBe('SIGKILL')
        const put = idsOf(writer.lines, 'P')
        const deleting = idsOf(writer.lines, 'd')
        const deleted = idsOf(writer.lines, 'D')
        const temps = (await readdir(dir)).filter((f) => f.endsWith('.tmp')).length
        const store = createFileLeaseStore(file) // loads: no corrupt line, whatever the kill cut
        expect((await readdir(dir)).sort(), 'temporary files removed').toEqual([
          'leases.json',
          'leases.json.journal',
        ])
        const lastIssued = Math.max(...put) + WORKERS
        for (let id = first; id <= lastIssued; id++) {
          const got = await store.get(`lease_${id}`)
          if (deleted.has(id)) expect(got, `lease ${id} deleted`).toBeUndefined()
          else if (put.has(id) && !deleting.has(id)) expect(got, `lease ${id} put`).toEqual(fixtureLease(id))
          else if (got) expect(got).toEqual(fixtureLease(id)) // in flight at the kill: whole or absent
          expected.set(id, got !== undefined)
        }
        for (const [id, there] of expected) {
          expect(await store.get(`lease_${id}`), `lease ${id} after round ${round}`).toEqual(
            there ? fixtureLease(id) : undefined,
          )
        }
        expect(await store.size()).toBe([...expected.values()].filter(Boolean).length)
        const snapshot = JSON.parse(await readFile(file, 'utf8')) as { seq: number }
        const lines = (await readFile(journal, 'utf8')).split('\n').length - 1
        console.log(
          `[lease-journal] round ${round}: ${put.size} puts and ${deleted.size} deletes acknowledged, ` +
            `snapshot at seq ${snapshot.seq}, ${lines} journal lines, ${await store.size()} leases, ` +
            `${temps} temporary files left by the kill`,
        )
      }
    },
  )
})

describe('a write cut short (file size limit: a short write, then EFBIG)', () => {
  test('rejects with the typed error, is undone, and the journal keeps whole lines that the next write follows', async () => {
    const limit = 16 * 1024
    const writer = spawnWriter(['fill', String(limit)], limit / 1024)
    expect(await writer.exited).toEqual([0, null])
    const tail = writer.lines.slice(-3)
    const big = Number(tail[0]!.split(' ')[1])
    expect(tail).toEqual([`E ${big} ${SynthTunnelErrorCode.RelayLeaseFile} EFBIG`, `P ${big + 1}`, 'done'])
    expect(writer.lines.slice(0, -3)).toEqual(Array.from({ length: big - 1 }, (_, i) => `P ${i + 1}`))

    expect((await wholeJournal()).map((l) => l.seq)).toEqual(Array.from({ length: big }, (_, i) => i + 1))
    const store = createFileLeaseStore(file)
    expect(await store.size()).toBe(big)
    expect(await store.get(`lease_${big}`)).toBeUndefined()
    expect(await store.get(`lease_${big + 1}`)).toEqual(fixtureLease(big + 1))
    expect(await store.get('lease_1')).toEqual(fixtureLease(1))
  })
})
