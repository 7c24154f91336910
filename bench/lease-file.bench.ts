/**
 * Relay lease persistence: time per lease as leases accumulate, for `createFileLeaseStore` (append
 * one journal line per change, fsync; compaction now and then) against a baseline written here:
 * the store as it was before the journal, rewriting the whole JSON file (temporary file, fsync,
 * rename) after every change, with the same serialized, shared writes. Both in this run, on the
 * same disk (the OS temp dir), one after the other; the memory store is the floor.
 *
 * Phases, each on fresh files, the stores' steps interleaved (put #i of one store, then of the
 * next) so that a slow moment of a shared disk hits them alike; a warm-up of 100 puts first:
 * 1. growth: puts one by one, each awaited, up to N leases; the median time of the ten puts
 *    ending at lease 10, 100, 1000 (N), and the ratio of the last to the first (flat = 1).
 * 2. churn at N live leases: N changes (put a new lease, delete an old one), one by one; mean,
 *    p50 and p99 per change, so compactions are counted in the mean.
 * 3. concurrency at N live leases: 16 tenants putting 20 leases each at once (writes shared by
 *    changes in flight, in both stores); wall time per lease, median of 3 rounds.
 *
 * fsync time dominates and is noisy on shared disks: compare ratios within one run.
 * Run: `pnpm bench lease-file` (env BENCH_LEASES=1000 for N).
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, open, rename, rm, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import type * as RelayModule from '@taskapp/tunnel-synth/relay'
import { builtEntry } from './lib/built-package'

type LeaseStore = RelayModule.LeaseStore
type RelayLease = RelayModule.RelayLease

const N = Number(process.env.BENCH_LEASES ?? 1000)
const MARKS = [10, 100, 1000].filter((m) => m <= N)
if (!MARKS.includes(N)) MARKS.push(N)

function lease(n: number): RelayLease {
  const hex = (s: string) => Buffer.from(s.padEnd(32, '.')).toString('hex')
  return {
    leaseId: `lease_${n}`,
    routeToken: `rt_${randomBytes(24).toString('base64url')}`,
    agentTokenHash: hex(`at_${n}`),
    workerTokenHash: hex(`wt_${n}`),
    ownerKeyHash: hex('owner'),
    clientInstanceId: `client-${n}`,
    localTarget: { host: '127.0.0.1', port: 8000 + (n % 1000) },
    createdAt: Date.now(),
    expiresAt: Date.now() + 3_600_000,
  }
}

/** The file store before the journal, reduced to what costs: a full atomic rewrite per change. */
function fullRewriteStore(file: string): LeaseStore {
  const byId = new Map<string, RelayLease>()
  const write = async () => {
    const text = `${JSON.stringify({ version: 1, leases: [...byId.values()] })}\n`
    const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`)
    const handle = await open(tmp, 'wx', 0o600)
    try {
      await handle.writeFile(text, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(tmp, file).catch(async (err: unknown) => {
      await unlink(tmp).catch(() => {})
      throw err
    })
  }
  // Serialized writes; calls made while a write waits to start share it (as the old store did).
  let tail: Promise<void> = Promise.resolve()
  let queued: Promise<void> | undefined
  const persist = () => {
    if (queued) return queued
    const next = tail.then(() => {
      queued = undefined
      return write()
    })
    queued = next
    tail = next.catch(() => {})
    return next
  }
  return {
    put: (l) => (byId.set(l.leaseId, l), persist()),
    get: (id) => byId.get(id),
    findByRouteToken: () => undefined,
    findByAgentTokenHash: () => undefined,
    delete: async (id) => byId.delete(id) && (await persist(), true),
    deleteExpired: () => [],
    size: () => byId.size,
    count: (now, owner) =>
      [...byId.values()].filter((l) => l.expiresAt > now && (owner === undefined || l.ownerKeyHash === owner))
        .length,
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.ceil((xs.length * p) / 100) - 1]!
const fmt = (ms: number) => (ms < 0.1 ? ms.toFixed(3) : ms < 10 ? ms.toFixed(2) : ms.toFixed(1))

async function timed(fn: () => unknown): Promise<number> {
  const t = performance.now()
  await fn()
  return performance.now() - t
}

/** Bytes this process has passed to write(2) so far (Linux `/proc/self/io`); NaN elsewhere. */
function bytesWritten(): number {
  try {
    return Number(/^wchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))?.[1])
  } catch {
    return Number.NaN
  }
}

/** One step's wall time, CPU time of the whole process (event loop and I/O threads), bytes written. */
interface Sample {
  ms: number
  cpuMs: number
  bytes: number
}

async function sampled(fn: () => unknown): Promise<Sample> {
  const cpu = process.cpuUsage()
  const bytes = bytesWritten()
  const ms = await timed(fn)
  const used = process.cpuUsage(cpu)
  return { ms, cpuMs: (used.user + used.system) / 1000, bytes: bytesWritten() - bytes }
}

type Stores = [string, (file: string) => LeaseStore][]

/**
 * Runs `step(store, i)` for i = 1..count on each store in turn (store A's step i, then B's, then
 * C's), so a slow moment of the shared disk hits all of them alike. Returns samples per store.
 */
async function interleaved(
  stores: LeaseStore[],
  count: number,
  step: (store: LeaseStore, i: number) => unknown,
): Promise<Sample[][]> {
  const samples = stores.map(() => [] as Sample[])
  for (let i = 1; i <= count; i++) {
    for (const [k, store] of stores.entries()) samples[k]!.push(await sampled(() => step(store, i)))
  }
  return samples
}

/** Median of `metric` over the ten puts ending at lease `n`. */
const at = (growth: Sample[], metric: keyof Sample, n: number) =>
  median(growth.slice(Math.max(0, n - 10), n).map((s) => s[metric]))

const METRICS: [keyof Sample, string, (v: number) => string][] = [
  ['ms', 'wall ms per put', fmt],
  ['cpuMs', 'CPU ms per put (event loop + I/O threads)', fmt],
  ['bytes', 'KiB written per put', (b) => (b / 1024).toFixed(1)],
]

async function main() {
  const { createFileLeaseStore, createMemoryLeaseStore } = (await import(
    builtEntry('tunnel-synth', 'relay.js').href
  )) as typeof RelayModule
  const kinds: Stores = [
    ['full rewrite (before)', fullRewriteStore],
    ['journal (createFileLeaseStore)', (f) => createFileLeaseStore(f)],
    ['memory (floor)', () => createMemoryLeaseStore()],
  ]
  const dir = await mkdtemp(join(tmpdir(), 'taskapp-bench-lease-file-'))
  const fresh = (phase: string) =>
    kinds.map(([name, make]) => make(join(dir, `${phase}-${name.split(' ')[0]}.json`)))
  console.log(`lease persistence, N = ${N} leases, files in ${dir}`)
  try {
    await interleaved(fresh('warmup'), 100, (s, i) => s.put(lease(i)))

    const growth = await interleaved(fresh('growth'), N, (s, i) => s.put(lease(i)))
    console.log('\n1. growth: median of the ten puts ending at lease n')
    for (const [metric, title, show] of METRICS) {
      console.log(
        [title.padEnd(44), ...MARKS.map((m) => `@${m}`.padStart(9)), `@${N}/@10`.padStart(10)].join(''),
      )
      for (const [k, [name]] of kinds.entries()) {
        const g = growth[k]!
        const cells = MARKS.map((m) => show(at(g, metric, m)).padStart(9))
        const growthRatio = at(g, metric, N) / at(g, metric, 10)
        const shown = Number.isFinite(growthRatio) ? `${growthRatio.toFixed(2)}x` : '-'
        console.log([`  ${name}`.padEnd(44), ...cells, shown.padStart(10)].join(''))
      }
      const ratio = (m: number) =>
        `${(at(growth[0]!, metric, m) / at(growth[1]!, metric, m)).toFixed(1)}x`.padStart(9)
      console.log(['  before / journal'.padEnd(44), ...MARKS.map(ratio)].join(''))
    }

    const churnStores = fresh('churn')
    await interleaved(churnStores, N, (s, i) => s.put(lease(i)))
    const churn = (
      await interleaved(churnStores, N, (s, i) => (i % 2 ? s.put(lease(N + i)) : s.delete(`lease_${i}`)))
    ).map((samples) => samples.map((x) => x.ms))
    console.log(`\n2. churn at ${N} live leases (put a new lease / delete an old one), ms per change`)
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    for (const [k, [name]] of kinds.entries()) {
      const c = churn[k]!
      console.log(
        `${name.padEnd(32)} mean ${fmt(mean(c)).padStart(7)}   p50 ${fmt(pct(c, 50)).padStart(7)}   p99 ${fmt(pct(c, 99)).padStart(7)}`,
      )
    }
    console.log(`${'before / journal'.padEnd(32)} mean ${(mean(churn[0]!) / mean(churn[1]!)).toFixed(1)}x`)

    const TENANTS = 16
    const EACH = 20
    const concurrentStores = fresh('concurrent')
    for (const s of concurrentStores) {
      await Promise.all(Array.from({ length: N }, (_, i) => Promise.resolve(s.put(lease(i)))))
    }
    const walls = await interleaved(concurrentStores, 3, (s, round) =>
      Promise.all(
        Array.from({ length: TENANTS }, async (_, t) => {
          for (let k = 0; k < EACH; k++) await s.put(lease(10 * N + round * 1000 + t * EACH + k))
        }),
      ),
    )
    console.log(
      `\n3. ${TENANTS} tenants x ${EACH} puts at once, ${N} live leases: wall ms per lease (median of 3)`,
    )
    const perLease = walls.map((w) => median(w.map((x) => x.ms)) / (TENANTS * EACH))
    for (const [k, [name]] of kinds.entries())
      console.log(`${name.padEnd(32)} ${fmt(perLease[k]!).padStart(7)}`)
    console.log(`${'before / journal'.padEnd(32)} ${(perLease[0]! / perLease[1]!).toFixed(1)}x`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
