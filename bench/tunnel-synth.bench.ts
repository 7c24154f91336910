/**
 * SynthTunnel benchmark (issue 15, relay speed): four paths to the same local server, measured in
 * one run by the same load generator in alternating rounds:
 * - direct: the load generator to the server;
 * - forwarder: the baseline, two `node:net` forwarders in two processes (caller → A → B → server,
 *   plain byte pipes, `bench/lib/forwarder.ts`), the shape of `ssh -R`;
 * - socket: the tunnel with its agent in another process, forwarding over loopback TCP
 *   (caller → relay → WebSocket → agent → TCP → server);
 * - in-process: the agent in the server's own process, handing requests to it in memory
 *   (`TunnelTarget.server`, what `InProcessTaskApp` does) as request/response pairs (the default);
 *   in-proc-conn: the same over in-memory connections (`inProcess: 'connection'`).
 *
 * Two local servers: a bare `node:http` echo (the worst case: the tunnel's fixed cost per request
 * against a server doing almost nothing) and `createTaskApp` answering `POST /rollout` (API key,
 * zod validation: what the tunnel fronts in practice). 1 KB JSON POSTs at 128 concurrent: req/s
 * and share of the forwarder's, p50/p99, CPU per request of every process but the load generator
 * (the in-process host is charged for the app it hosts) and its total against the forwarder's;
 * p50 at concurrency 1; then 128 concurrent 1 MB bodies echoed: MB/s and RSS growth per process.
 * A closing "goals" block lists each goal of the issue with the measured figure.
 *
 * On a shared 2-core machine absolute figures move from run to run: read the ratios against the
 * forwarder, measured in the same run. Packages run from their built `dist/`.
 *
 * Run: `pnpm bench tunnel-synth` (env BENCH_SECONDS=4 per measured window, BENCH_ROUNDS=2 rounds
 * per path, BENCH_SKIP_BIG=1 to skip the 1 MB part, BENCH_PROF=1 for --cpu-prof of the children in
 * /tmp/tsprof).
 */
import { fileURLToPath } from 'node:url'
import { builtEntry } from './lib/built-package'
import { forkRole } from './lib/ipc'
import type { RolePeer } from './lib/ipc'
import { bigBodies, load, percentile } from './lib/tunnel-load'
import type { Target } from './lib/tunnel-load'
import { bigLines, goalLines, latencyLines, newTally, throughputLines } from './lib/tunnel-report'
import type { BigResult, PathName, Tally } from './lib/tunnel-report'

const MB = 1024 * 1024
const TASK_KEY = 'sk-bench-0123456789abcdef'
const RELAY_KEY = 'bench-relay-key'
const ROLES = fileURLToPath(new URL('./lib/tunnel-roles.ts', import.meta.url))
const PROF = process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/tsprof'] : []

/** A process whose CPU counts, under the label printed for it. */
interface Counted {
  label: string
  peer: RolePeer
}
/** One path to one local server: where the load goes and which processes it costs. */
interface Path {
  name: PathName
  target: Target
  procs: Counted[]
}

const peers: RolePeer[] = []
async function fork(role: string, init: Record<string, unknown>) {
  const { peer, ready } = await forkRole(ROLES, role, init, PROF)
  peers.push(peer)
  return { peer, ready }
}

/** Starts every process; returns the four paths to the echo server and to the task app. */
async function startAll(): Promise<{ echo: Path[]; task: Path[] }> {
  const echo = await fork('server', { kind: 'echo' })
  const task = await fork('server', { kind: 'taskapp', apiKey: TASK_KEY })
  const ports = [echo.ready.port as number, task.ready.port as number]
  const fwdB = await fork('forwarder', { targets: ports })
  const fwdA = await fork('forwarder', { targets: fwdB.ready.ports })
  const relay = await fork('relay', { relayKey: RELAY_KEY })
  const relayUrl = relay.ready.url as string
  const agent = await fork('agent', {
    relayUrl,
    relayKey: RELAY_KEY,
    targets: [
      { port: ports[0], apiKey: '' },
      { port: ports[1], apiKey: TASK_KEY },
    ],
  })
  const inproc = (kind: string, apiKey: string, mode: string) =>
    fork('inprocess', { kind, apiKey, mode, relayUrl, relayKey: RELAY_KEY })
  const inEcho = [await inproc('echo', '', 'request'), await inproc('echo', '', 'connection')] as const
  const inTask = [
    await inproc('taskapp', TASK_KEY, 'request'),
    await inproc('taskapp', TASK_KEY, 'connection'),
  ] as const
  const tunnels = agent.ready.tunnels as Target[]
  const paths = (i: 0 | 1, server: RolePeer, hosts: typeof inEcho, directHeaders: Record<string, string>) => {
    const fwdPorts = fwdA.ready.ports as number[]
    const counted = (label: string, peer: RolePeer): Counted => ({ label, peer })
    return [
      {
        name: 'direct',
        target: { url: `http://127.0.0.1:${ports[i]}`, headers: directHeaders },
        procs: [counted('server', server)],
      },
      {
        name: 'forwarder',
        target: { url: `http://127.0.0.1:${fwdPorts[i]}`, headers: directHeaders },
        procs: [counted('fwd-a', fwdA.peer), counted('fwd-b', fwdB.peer), counted('server', server)],
      },
      {
        name: 'socket',
        target: tunnels[i]!,
        procs: [counted('relay', relay.peer), counted('agent', agent.peer), counted('server', server)],
      },
      ...(['in-process', 'in-proc-conn'] as const).map((name, h) => ({
        name,
        target: {
          url: hosts[h]!.ready.url as string,
          headers: hosts[h]!.ready.headers as Record<string, string>,
        },
        procs: [counted('relay', relay.peer), counted('agent+app', hosts[h]!.peer)],
      })),
    ] satisfies Path[]
  }
  return {
    echo: paths(0, echo.peer, inEcho, {}),
    task: paths(1, task.peer, inTask, { 'x-api-key': TASK_KEY }),
  }
}

const reset = (procs: Counted[], rss = false) => Promise.all(procs.map((p) => p.peer.call('reset', { rss })))
const report = (procs: Counted[]) => Promise.all(procs.map((p) => p.peer.call('report')))

/** Alternating rounds over `paths` at `concurrency`; one tally per path. */
async function throughput(
  paths: Path[],
  request: { path: string; body: string },
  opts: { rounds: number; seconds: number; concurrency: number },
): Promise<Map<PathName, Tally>> {
  const tallies = new Map(paths.map((p) => [p.name, newTally()]))
  for (let round = 0; round < opts.rounds; round++) {
    for (const path of paths) {
      const r = await load(path.target, request, { ...opts, warmSeconds: 0.5 }, async () => {
        await reset(path.procs)
      })
      const reports = await report(path.procs)
      if (process.env.BENCH_DEBUG) console.log(path.name, r.lat.length, JSON.stringify(reports))
      const t = tallies.get(path.name)!
      t.n += r.lat.length
      t.seconds += r.seconds
      t.errors += r.errors
      for (const ms of r.lat) t.lat.push(ms) // not push(...): over ~120k latencies overflow the stack
      path.procs.forEach((p, i) =>
        t.cpu.set(p.label, (t.cpu.get(p.label) ?? 0) + (reports[i]!.cpuMs as number) * 1000),
      )
    }
  }
  return tallies
}

/** p50 at concurrency 1 of each path. */
async function latencyAtOne(paths: Path[], request: { path: string; body: string }, seconds: number) {
  const p50 = new Map<PathName, number>()
  for (const path of paths) {
    const r = await load(path.target, request, { seconds, warmSeconds: 0.3, concurrency: 1 })
    p50.set(
      path.name,
      percentile(
        r.lat.sort((a, b) => a - b),
        50,
      ),
    )
  }
  return p50
}

/** 1 MB bodies through each path; RSS growth of each counted process. */
async function big(paths: Path[], concurrency: number): Promise<Map<PathName, BigResult>> {
  const out = new Map<PathName, BigResult>()
  for (const path of paths) {
    await reset(path.procs, true)
    const b = await bigBodies(path.target, concurrency, 2)
    const reports = await report(path.procs)
    const rssGrowth = new Map(
      path.procs.map((p, i) => [
        p.label,
        ((reports[i]!.peak as number) - (reports[i]!.baseline as number)) / MB,
      ]),
    )
    const moved = b.ok * 2 // MB, both directions
    const cpuPerMb = new Map(
      path.procs.map((p, i) => [p.label, ((reports[i]!.cpuMs as number) * 1000) / moved]),
    )
    out.set(path.name, { ok: b.ok, total: b.total, mbPerSecond: b.mbPerSecond, rssGrowth, cpuPerMb })
  }
  return out
}

function rolloutBody(): string {
  const rollout = JSON.stringify({
    trace_correlation_id: 'trace-bench',
    env: { env_name: 'bench', seed: 3, config: { split: 'train', note: '' } },
    policy: { policy_name: 'p', config: { model: 'gpt-4o-mini', temperature: 0 }, output_mode: 'tool_calls' },
    on_done: 'reset',
    safety: { max_time_s: 3600 },
  })
  return rollout.replace('"note":""', `"note":"${'n'.repeat(1000 - rollout.length)}"`)
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 4)
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2)
  const concurrency = 128
  builtEntry('tunnel-synth') // build once here, before the children look
  builtEntry('task-server')
  try {
    const paths = await startAll()
    const opts = { rounds, seconds, concurrency }
    const window = `1 KB JSON POST, ${concurrency} concurrent, ${rounds} rounds of ${seconds} s per path`
    const echoRequest = { path: '/json', body: JSON.stringify({ data: 'x'.repeat(1000 - 12) }) }
    const taskRequest = { path: '/rollout', body: rolloutBody() }
    // JIT and connection pools warm on every path first, so the first measured round is not colder
    const warm = { rounds: 1, seconds: 0.5, concurrency }
    await throughput(paths.echo, echoRequest, warm)
    await throughput(paths.task, taskRequest, warm)
    const echo = await throughput(paths.echo, echoRequest, opts)
    console.log(throughputLines(`bare node:http echo (worst case), ${window}:`, echo).join('\n'))
    const task = await throughput(paths.task, taskRequest, opts)
    console.log(throughputLines(`createTaskApp POST /rollout, ${window}:`, task).join('\n'))
    const p50 = await latencyAtOne(paths.echo, echoRequest, Math.min(seconds, 1.5))
    const taskP50 = await latencyAtOne(paths.task, taskRequest, Math.min(seconds, 1.5))
    console.log([...latencyLines('echo', p50), ...latencyLines('task app', taskP50)].join('\n'))
    const bigRun = process.env.BENCH_SKIP_BIG ? undefined : await big(paths.echo, concurrency)
    if (bigRun) console.log(bigLines(concurrency, bigRun).join('\n'))
    console.log(goalLines({ echo, task, p50, big: bigRun }).join('\n'))
  } finally {
    await Promise.all(peers.map((p) => p.close()))
  }
}

await main()
