/**
 * Relay cluster: the cost of the extra hop, and the failover time.
 *
 * Processes: a private redis-server (test-utils' `startRedisServer`, Unix socket); relay nodes as
 * child processes (`cluster-node-child.ts`, from source); this process runs the local echo server,
 * the real `synthTunnel` agent and the load generator.
 *
 * 1. Hop: one agent attached to node A; CONCURRENCY callers send small GETs for BENCH_SECONDS
 *    through A (the owning node) and then through B (A forwards nothing: B hops to A), alternating
 *    ROUNDS times, in the same sitting. Reported: requests/s and p50 of each, and B's throughput as
 *    a share of A's (target ≥ 70 %).
 * 2. Failover, TRIALS times: two fresh nodes X and Y, a tunnel leased on X with `relayUrls: [Y]`;
 *    X is SIGKILLed and callers poll Y back to back; the time from the kill to the first 200 is the
 *    failover time (agent reconnect backoff 125–250 ms + attach + presence takeover). Reported:
 *    median and worst (target median < 1 s).
 *
 * Run: `pnpm bench relay-cluster` (env BENCH_SECONDS=2 per window, BENCH_ROUNDS=5 windows per path,
 * alternating A, B, A, B, ... so that the machine's load swings hit both alike; medians reported;
 * BENCH_TRIALS=20 (0: no failover), BENCH_CONCURRENCY=32; BENCH_CPU_PROF=<dir>: the hop phase's nodes
 * write CPU profiles there). CPU per request of each process (from /proc and `process.cpuUsage`)
 * is printed per path, so the ratio can be explained.
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import { synthTunnel } from '@taskapp/tunnel-synth'
import { Agent, request } from 'undici'
import { startRedisServer } from '../packages/test-utils/src/redis-server'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)
const TRIALS = Number(process.env.BENCH_TRIALS ?? 20)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const SECRET = 'bench-cluster-secret-0123456789abcdef'
/** A directory: the hop phase's two nodes run with `--cpu-prof` there (stopped cleanly to write it). */
const CPU_PROF = process.env.BENCH_CPU_PROF
const FIXTURE = fileURLToPath(
  new URL('../packages/tunnel-synth/src/fixtures/cluster-node-child.ts', import.meta.url),
)

const redis = await startRedisServer()
const children = new Set<ChildProcess>()

async function startNode(
  prefix: string,
  nodeId: string,
  profile = false,
): Promise<{ child: ChildProcess; url: string }> {
  const prof = profile && CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : []
  const child = fork(FIXTURE, [redis.url, prefix, nodeId], {
    execArgv: ['--conditions=@taskapp/source', '--import', 'tsx', ...prof],
    env: { ...process.env, TASKAPP_RELAY_CLUSTER_SECRET: SECRET },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const [msg] = (await once(child, 'message')) as [{ type: string; url?: string; message?: string }]
  if (msg.type !== 'listening') throw new Error(`node ${nodeId}: ${msg.message}`)
  return { child, url: msg.url! }
}

/** Stop a node cleanly (it writes its CPU profile, if any, on exit). */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.send({ type: 'stop' })
  await exited
}

/** CPU time (user, system; µs) a child process has used so far, from /proc (Linux). */
function cpuOf(child: ChildProcess): { user: number; system: number } {
  const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const tick = 1e6 / 100 // USER_HZ is 100 on Linux
  return { user: Number(fields[11]) * tick, system: Number(fields[12]) * tick }
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
}

const local = createServer((req, res) => res.end(`ok ${req.url}`))
await new Promise<void>((r) => local.listen(0, '127.0.0.1', r))
const port = (local.address() as { port: number }).port
const target = { localUrl: `http://127.0.0.1:${port}`, host: '127.0.0.1', port }
const dispatcher = new Agent({ connections: CONCURRENCY * 2, keepAliveTimeout: 10_000 })

type Window = { rps: number; p50: number; errors: number; cpu: Cpu[] }
type Cpu = { user: number; system: number }

/** CPU (µs) used by each of `procs` (a child, or undefined for this process) while `run` runs. */
async function measured<T>(procs: (ChildProcess | undefined)[], run: () => Promise<T>): Promise<[T, Cpu[]]> {
  const read = () => procs.map((p) => (p ? cpuOf(p) : process.cpuUsage()))
  const before = read()
  const result = await run()
  const after = read()
  return [
    result,
    after.map((a, i) => ({ user: a.user - before[i]!.user, system: a.system - before[i]!.system })),
  ]
}

async function load(
  url: string,
  headers: Record<string, string>,
  procs: (ChildProcess | undefined)[] = [],
): Promise<Window> {
  const [[times, errors], cpu] = await measured(procs, () => loadOnly(url, headers))
  times.sort((a, b) => a - b)
  return { rps: times.length / SECONDS, p50: times[Math.floor(times.length / 2)] ?? NaN, errors, cpu }
}

async function loadOnly(url: string, headers: Record<string, string>): Promise<[number[], number]> {
  const times: number[] = []
  let errors = 0
  const end = performance.now() + SECONDS * 1000
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const t = performance.now()
        const r = await request(url, { headers, dispatcher })
        await r.body.dump()
        if (r.statusCode === 200) times.push(performance.now() - t)
        else errors += 1
      }
    }),
  )
  return [times, errors]
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (n: number, d = 0) => n.toFixed(d)

/** CPU per request (µs, user+system, and the system part) of each process over `windows`. */
/** CPU per request (µs) of each process over `windows`: user+system, and the system part. */
function cpuPer(windows: Window[], names: string[]): { name: string; total: number; system: number }[] {
  const requests = windows.reduce((n, w) => n + w.rps * SECONDS, 0)
  return names.map((name, i) => {
    const user = windows.reduce((n, w) => n + w.cpu[i]!.user, 0) / requests
    const system = windows.reduce((n, w) => n + w.cpu[i]!.system, 0) / requests
    return { name, total: user + system, system }
  })
}

const sum = (per: { total: number }[]) => per.reduce((n, p) => n + p.total, 0)

function cpuLine(per: { name: string; total: number; system: number }[]): string {
  const parts = per.map((p) => `${p.name} ${fmt(p.total)} (sys ${fmt(p.system)})`)
  return `${parts.join(', ')}; sum ${fmt(sum(per))} µs`
}

const met = (ok: boolean) => (ok ? 'met' : 'NOT met')
const HOP_TARGET = 70
const FAILOVER_TARGET_MS = 1000

async function hop(): Promise<void> {
  const prefix = redis.prefix()
  const [a, b] = await Promise.all([startNode(prefix, 'a', true), startNode(prefix, 'b', true)])
  const tunnel = await synthTunnel({ backendUrl: a.url, apiKey: 'k', localApiKeys: [], env: {} }).open(target)
  const path = new URL(tunnel.url).pathname
  const headers = { ...tunnel.headers }
  await load(`${a.url}${path}/warm`, headers) // warm both paths (pools, JIT)
  await load(`${b.url}${path}/warm`, headers)
  const procs = [a.child, b.child, undefined]
  const owner: Window[] = []
  const other: Window[] = []
  for (let i = 0; i < ROUNDS; i += 1) {
    owner.push(await load(`${a.url}${path}/x`, headers, procs))
    other.push(await load(`${b.url}${path}/x`, headers, procs))
  }
  const oRps = median(owner.map((r) => r.rps))
  const hRps = median(other.map((r) => r.rps))
  const names = ['node A', 'node B', 'bench (agent, server, load)']
  console.log(`hop: ${CONCURRENCY} callers, ${SECONDS} s x ${ROUNDS} rounds each, small GETs`)
  console.log(
    `  through the owning node A: ${fmt(oRps)} req/s, p50 ${fmt(median(owner.map((r) => r.p50)), 2)} ms`,
  )
  const oCpu = cpuPer(owner, names)
  const hCpu = cpuPer(other, names)
  console.log(`    CPU per request: ${cpuLine(oCpu)}`)
  console.log(
    `  through node B (extra hop): ${fmt(hRps)} req/s, p50 ${fmt(median(other.map((r) => r.p50)), 2)} ms`,
  )
  console.log(`    CPU per request: ${cpuLine(hCpu)}`)
  const pairs = owner.map((o, i) => (100 * other[i]!.rps) / o.rps)
  const ratio = (100 * hRps) / oRps
  console.log(
    `  hop throughput / owner throughput: ${fmt(ratio, 1)} % of the medians (target >= ${HOP_TARGET} %: ${met(ratio >= HOP_TARGET)})`,
  )
  console.log(
    `  per adjacent pair of windows: median ${fmt(median(pairs), 1)} %, range ${fmt(Math.min(...pairs), 1)}–${fmt(Math.max(...pairs), 1)} %`,
  )
  // when the processes share fewer free cores than they could use, throughput follows the CPU
  // all of them spend per request; with a core each, the busiest process sets it
  const busiest = (per: { total: number }[]) => Math.max(...per.map((p) => p.total))
  console.log(
    `  CPU-bound share (owner CPU sum / hop CPU sum): ${fmt((100 * sum(oCpu)) / sum(hCpu), 1)} %; with a free core per process (busiest process): ${fmt((100 * busiest(oCpu)) / busiest(hCpu), 1)} %`,
  )
  const errors = [...owner, ...other].reduce((n, r) => n + r.errors, 0)
  if (errors) console.log(`  non-200 answers: ${errors}`)
  await tunnel.close()
  await Promise.all([stop(a.child), stop(b.child)])
}

async function failoverTrial(i: number): Promise<number> {
  const prefix = redis.prefix()
  const [x, y] = await Promise.all([startNode(prefix, `x${i}`), startNode(prefix, `y${i}`)])
  const tunnel = await synthTunnel({
    backendUrl: x.url,
    relayUrls: [y.url],
    apiKey: 'k',
    localApiKeys: [],
    env: {},
  }).open(target)
  const url = `${y.url}${new URL(tunnel.url).pathname}/f`
  const headers = { ...tunnel.headers }
  for (;;) {
    const r = await request(url, { headers, dispatcher })
    await r.body.dump()
    if (r.statusCode === 200) break // the hop Y → X works
  }
  const killed = performance.now()
  await kill(x.child)
  let ms = NaN
  for (;;) {
    const r = await request(url, { headers, dispatcher, headersTimeout: 10_000 })
    await r.body.dump()
    if (r.statusCode === 200) {
      ms = performance.now() - killed
      break
    }
    if (performance.now() - killed > 30_000) break
  }
  await tunnel.close()
  await kill(y.child)
  return ms
}

async function failover(): Promise<void> {
  const times: number[] = []
  for (let i = 0; i < TRIALS; i += 1) times.push(await failoverTrial(i))
  const ok = times.filter((t) => Number.isFinite(t))
  console.log(
    `failover: ${TRIALS} trials (node holding the agent SIGKILLed -> first 200 through another node)`,
  )
  const m = median(ok)
  console.log(
    `  median ${fmt(m)} ms, worst ${fmt(Math.max(...ok))} ms, best ${fmt(Math.min(...ok))} ms (target median < ${FAILOVER_TARGET_MS} ms: ${met(m < FAILOVER_TARGET_MS)})`,
  )
  if (ok.length < times.length)
    console.log(`  ${times.length - ok.length} trials did not recover within 30 s`)
}

try {
  await hop()
  if (TRIALS > 0) await failover()
} finally {
  for (const c of children) await kill(c)
  await dispatcher.close()
  local.close()
  await redis.close()
}
