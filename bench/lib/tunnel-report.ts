/**
 * Tallies and printed lines of the tunnel-synth benchmark: per path (direct, forwarder, tunnel
 * over sockets, tunnel in-process) req/s and its share of the forwarder's, CPU per request per
 * process and in total, p50 at concurrency 1, 1 MB throughput and RSS growth, and the goals of
 * the relay-speed issue with the measured figure and whether it is met.
 */
import { percentile } from './tunnel-load'

/** The paths, in print order (`in-proc-conn`: the in-process path's `'connection'` mode). */
export const PATHS = ['direct', 'forwarder', 'socket', 'in-process', 'in-proc-conn'] as const
export type PathName = (typeof PATHS)[number]

/** Requests, time, latencies and CPU (µs, per process label) summed over the rounds of one path. */
export interface Tally {
  n: number
  seconds: number
  errors: number
  lat: number[]
  cpu: Map<string, number>
}

export const newTally = (): Tally => ({ n: 0, seconds: 0, errors: 0, lat: [], cpu: new Map() })

export const rate = (t: Tally) => t.n / t.seconds
/** Total CPU per request over the counted processes, in µs. */
export const cpuPerRequest = (t: Tally) => [...t.cpu.values()].reduce((a, b) => a + b, 0) / t.n

/** One 1 MB phase: MB/s and RSS growth (MB) per process label. */
export interface BigResult {
  ok: number
  total: number
  mbPerSecond: number
  rssGrowth: Map<string, number>
  /** CPU µs per MB moved (both directions) of each counted process: steadier than MB/s here. */
  cpuPerMb: Map<string, number>
}

const f = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a')
const pct = (x: number, of: number) => `${f((x / of) * 100)} %`

/** The req/s table of one local server. */
export function throughputLines(title: string, tallies: Map<PathName, Tally>): string[] {
  const fwd = tallies.get('forwarder')!
  const lines = [
    title,
    '  path          req/s  of fwd    p50 ms   p99 ms  CPU µs/req per process        total  ×fwd',
  ]
  for (const name of PATHS) {
    const t = tallies.get(name)
    if (!t) continue
    t.lat.sort((a, b) => a - b)
    const per = [...t.cpu].map(([label, us]) => `${label} ${f(us / t.n)}`).join(', ')
    lines.push(
      `  ${name.padEnd(12)} ${f(rate(t)).padStart(6)}  ${pct(rate(t), rate(fwd)).padStart(6)}  ${f(percentile(t.lat, 50), 2).padStart(8)} ${f(percentile(t.lat, 99), 2).padStart(8)}  ${per.padEnd(28)} ${f(cpuPerRequest(t)).padStart(5)}  ${f(cpuPerRequest(t) / cpuPerRequest(fwd), 2)}×` +
        (t.errors ? `  (${t.errors} errors)` : ''),
    )
  }
  return lines
}

/** p50 at concurrency 1 and what each path adds to direct. */
export function latencyLines(title: string, p50: Map<PathName, number>): string[] {
  const direct = p50.get('direct')!
  const parts = PATHS.filter((n) => p50.has(n)).map((n) =>
    n === 'direct' ? `direct ${f(direct, 3)} ms` : `${n} +${f(p50.get(n)! - direct, 3)} ms`,
  )
  return [`  p50 at concurrency 1, ${title}: ${parts.join(', ')}`]
}

/** The 1 MB table. */
export function bigLines(concurrency: number, big: Map<PathName, BigResult>): string[] {
  const fwd = big.get('forwarder')!
  const lines = [
    `echo, ${concurrency} concurrent 1 MB bodies echoed (MB/s counts both directions), RSS growth per process:`,
  ]
  for (const name of PATHS) {
    const b = big.get(name)
    if (!b) continue
    const rss = [...b.rssGrowth].map(([label, mb]) => `${label} +${f(mb, 1)} MB`).join(', ')
    const cpu = [...b.cpuPerMb].map(([label, us]) => `${label} ${f(us)}`).join(', ')
    lines.push(
      `  ${name.padEnd(12)} ${f(b.mbPerSecond).padStart(5)} MB/s  ${pct(b.mbPerSecond, fwd.mbPerSecond).padStart(6)} of fwd  ${b.ok}/${b.total} ok  ${rss}; CPU µs/MB ${cpu}`,
    )
  }
  return lines
}

/** Everything the goals are judged on. */
export interface Figures {
  echo: Map<PathName, Tally>
  task: Map<PathName, Tally>
  p50: Map<PathName, number>
  big: Map<PathName, BigResult> | undefined
}

/** The goals of issue 15, each with the measured figure and met / not met. */
export function goalLines(x: Figures): string[] {
  const lines = ['goals (issue 15; ratios against the forwarder measured in this run):']
  const goal = (text: string, figure: string, met: boolean) =>
    lines.push(`  [${met ? 'met' : 'NOT met'}] ${text}: ${figure}`)
  const share = (m: Map<PathName, Tally>, name: PathName) => rate(m.get(name)!) / rate(m.get('forwarder')!)
  const cpuRatio = cpuPerRequest(x.echo.get('socket')!) / cpuPerRequest(x.echo.get('forwarder')!)
  goal('socket path, echo: total CPU per request <= 1.5x forwarder', `${f(cpuRatio, 2)}x`, cpuRatio <= 1.5)
  goal(
    'socket path, echo: req/s >= 70 % of forwarder',
    pct(share(x.echo, 'socket'), 1),
    share(x.echo, 'socket') >= 0.7,
  )
  goal(
    'in-process path, echo: req/s >= 100 % of forwarder',
    pct(share(x.echo, 'in-process'), 1),
    share(x.echo, 'in-process') >= 1,
  )
  goal(
    'task app POST /rollout, socket: req/s >= 90 % of forwarder',
    pct(share(x.task, 'socket'), 1),
    share(x.task, 'socket') >= 0.9,
  )
  goal(
    'task app POST /rollout, in-process: req/s >= 100 % of forwarder',
    pct(share(x.task, 'in-process'), 1),
    share(x.task, 'in-process') >= 1,
  )
  if (x.big) bigGoals(x.big, goal)
  else lines.push('  [skipped] 1 MB goals (BENCH_SKIP_BIG)')
  const direct = x.p50.get('direct')!
  for (const name of ['socket', 'in-process'] as const) {
    const added = x.p50.get(name)! - direct
    goal(`${name} path, echo: added p50 at concurrency 1 < 0.5 ms`, `+${f(added, 3)} ms`, added < 0.5)
  }
  lines.push(
    "  [note] measured with the relay's per-request checks (in-flight shares, framing) on, as shipped",
  )
  return lines
}

/**
 * 1 MB goals: MB/s >= 80 % of the forwarder's; relay RSS growth <= forwarder A's, the agent's <=
 * forwarder B's (the in-process host's <= forwarder B's plus the server's: it hosts the app).
 */
function bigGoals(big: Map<PathName, BigResult>, goal: (text: string, figure: string, met: boolean) => void) {
  const fwd = big.get('forwarder')!
  const grow = (b: BigResult, label: string) => b.rssGrowth.get(label) ?? NaN
  for (const name of ['socket', 'in-process'] as const) {
    const b = big.get(name)!
    const share = b.mbPerSecond / fwd.mbPerSecond
    goal(`1 MB bodies, ${name}: MB/s >= 80 % of forwarder`, pct(share, 1), share >= 0.8)
    const agentLabel = name === 'socket' ? 'agent' : 'agent+app'
    if (!big.has(name)) continue
    const relay = grow(b, 'relay')
    const agent = grow(b, agentLabel)
    // the in-process host also holds the app: its allowance is forwarder B's growth plus the server's
    const allowance = grow(fwd, 'fwd-b') + (name === 'socket' ? 0 : grow(fwd, 'server'))
    const what = name === 'socket' ? "forwarder B's" : "forwarder B's + the server's"
    goal(
      `1 MB bodies, ${name}: relay RSS growth <= forwarder A's, ${agentLabel}'s <= ${what}`,
      `relay +${f(relay, 1)} vs +${f(grow(fwd, 'fwd-a'), 1)} MB, ${agentLabel} +${f(agent, 1)} vs +${f(allowance, 1)} MB`,
      relay <= grow(fwd, 'fwd-a') && agent <= allowance,
    )
  }
}
