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
 * BENCH_TRIALS=20, BENCH_CONCURRENCY=32).
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
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
const FIXTURE = fileURLToPath(
  new URL('../packages/tunnel-synth/src/fixtures/cluster-node-child.ts', import.meta.url),
)

const redis = await startRedisServer()
const children = new Set<ChildProcess>()

async function startNode(prefix: string, nodeId: string): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(FIXTURE, [redis.url, prefix, nodeId], {
    execArgv: ['--conditions=@taskapp/source', '--import', 'tsx'],
    env: { ...process.env, TASKAPP_RELAY_CLUSTER_SECRET: SECRET },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const [msg] = (await once(child, 'message')) as [{ type: string; url?: string; message?: string }]
  if (msg.type !== 'listening') throw new Error(`node ${nodeId}: ${msg.message}`)
  return { child, url: msg.url! }
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

async function load(
  url: string,
  headers: Record<string, string>,
): Promise<{ rps: number; p50: number; errors: number }> {
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
  times.sort((a, b) => a - b)
  return { rps: times.length / SECONDS, p50: times[Math.floor(times.length / 2)] ?? NaN, errors }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (n: number, d = 0) => n.toFixed(d)

async function hop(): Promise<void> {
  const prefix = redis.prefix()
  const [a, b] = await Promise.all([startNode(prefix, 'a'), startNode(prefix, 'b')])
  const tunnel = await synthTunnel({ backendUrl: a.url, apiKey: 'k', localApiKeys: [], env: {} }).open(target)
  const path = new URL(tunnel.url).pathname
  const headers = { ...tunnel.headers }
  await load(`${b.url}${path}/warm`, headers) // warm both paths (pools, JIT)
  const owner: { rps: number; p50: number; errors: number }[] = []
  const other: typeof owner = []
  for (let i = 0; i < ROUNDS; i += 1) {
    owner.push(await load(`${a.url}${path}/x`, headers))
    other.push(await load(`${b.url}${path}/x`, headers))
  }
  const oRps = median(owner.map((r) => r.rps))
  const hRps = median(other.map((r) => r.rps))
  console.log(`hop: ${CONCURRENCY} callers, ${SECONDS} s x ${ROUNDS} rounds each, small GETs`)
  console.log(
    `  through the owning node A: ${fmt(oRps)} req/s, p50 ${fmt(median(owner.map((r) => r.p50)), 2)} ms`,
  )
  console.log(
    `  through node B (extra hop): ${fmt(hRps)} req/s, p50 ${fmt(median(other.map((r) => r.p50)), 2)} ms`,
  )
  const pairs = owner.map((o, i) => (100 * other[i]!.rps) / o.rps)
  console.log(
    `  hop throughput / owner throughput: ${fmt((100 * hRps) / oRps, 1)} % of the medians (target >= 70 %)`,
  )
  console.log(
    `  per adjacent pair of windows: median ${fmt(median(pairs), 1)} %, range ${fmt(Math.min(...pairs), 1)}–${fmt(Math.max(...pairs), 1)} %`,
  )
  const errors = [...owner, ...other].reduce((n, r) => n + r.errors, 0)
  if (errors) console.log(`  non-200 answers: ${errors}`)
  await tunnel.close()
  await Promise.all([kill(a.child), kill(b.child)])
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

try {
  await hop()
  const times: number[] = []
  for (let i = 0; i < TRIALS; i += 1) times.push(await failoverTrial(i))
  const ok = times.filter((t) => Number.isFinite(t))
  console.log(
    `failover: ${TRIALS} trials (node holding the agent SIGKILLed -> first 200 through another node)`,
  )
  console.log(
    `  median ${fmt(median(ok))} ms, worst ${fmt(Math.max(...ok))} ms, best ${fmt(Math.min(...ok))} ms (target median < 1000 ms)`,
  )
  if (ok.length < times.length)
    console.log(`  ${times.length - ok.length} trials did not recover within 30 s`)
} finally {
  for (const c of children) await kill(c)
  await dispatcher.close()
  local.close()
  await redis.close()
}
