/** The tables of `pnpm bench relay-abuse`: the victim per phase, the attack side, and where CPU went. */
import type { PhaseFigures } from './ipc'
import type { Tally } from './raw-http'
import type { LoadResult } from './victim-load'
import { percentile } from './victim-load'

/** What the relay reports for one phase (see relay-abuse-roles.ts). */
export type RelayPhase = PhaseFigures & {
  peakInflight?: number
  peakMemoryMiB?: number
  rejected?: Record<string, number>
}

export interface PhaseResult {
  label: string
  isAttack: boolean
  load: LoadResult
  /** The attacker's counts (and the victim's lease probe in the lease phase). */
  attack: Tally
  relay: RelayPhase
  cpu: { relay: PhaseFigures; victim: PhaseFigures; attacker: PhaseFigures; gen: PhaseFigures }
  /** Busy share of the whole machine (all cores, every process, ours or not) during the window. */
  machineBusy: number
  notes: string[]
}

const TARGET_SUCCESS = 99
const TARGET_RATIO = 3

/** A Markdown table, columns padded to their widest cell. */
function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n')
}

const f = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '–')
const tally = (t: Tally) =>
  Object.entries(t)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ×${v}`)
    .join(', ') || '–'

interface Verdict {
  success: number
  p50: number
  p99: number
  ratio: number
  missed: string[]
}

function verdict(r: PhaseResult, quietP99: number): Verdict {
  const success = (r.load.ok / r.load.sent) * 100
  const p99 = percentile(r.load.lat, 99)
  const ratio = p99 / quietP99
  const missed: string[] = []
  if (r.isAttack && !(success >= TARGET_SUCCESS)) missed.push(`success ${f(success)} % < ${TARGET_SUCCESS} %`)
  if (r.isAttack && !(ratio <= TARGET_RATIO)) missed.push(`p99 ${f(ratio, 2)}× > ${TARGET_RATIO}× quiet`)
  return { success, p50: percentile(r.load.lat, 50), p99, ratio, missed }
}

function relaySide(r: RelayPhase): string {
  const refused = Object.entries(r.rejected ?? {})
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} +${v}`)
  return `in flight ≤ ${r.peakInflight ?? '–'}; in transit ≤ ${f(r.peakMemoryMiB ?? NaN, 2)} MiB; refused/cut: ${refused.join(', ') || 'none'}`
}

/** The quiet windows' latencies pooled, sorted. */
function pooledQuiet(results: PhaseResult[]): number[] {
  return results
    .filter((r) => !r.isAttack)
    .flatMap((r) => r.load.lat)
    .sort((a, b) => a - b)
}

/** The victim's figures per phase, and the pooled quiet baseline last. */
function victimTable(results: PhaseResult[], verdicts: Verdict[], quietLat: number[]): string {
  const rows = results.map((r, i) => {
    const v = verdicts[i]!
    return [
      r.label,
      `${r.load.ok} / ${r.load.sent}`,
      `${f(v.success)} %`,
      f(v.p50, 2),
      f(v.p99, 2),
      `${f(v.ratio, 2)}×`,
      r.isAttack ? (v.missed.length ? `MISSED: ${v.missed.join('; ')}` : 'met') : 'quiet',
    ]
  })
  const quietRuns = results.filter((r) => !r.isAttack)
  const ok = quietRuns.reduce((n, r) => n + r.load.ok, 0)
  const sent = quietRuns.reduce((n, r) => n + r.load.sent, 0)
  rows.push([
    `quiet, ${quietRuns.length} windows pooled`,
    `${ok} / ${sent}`,
    `${f((ok / sent) * 100)} %`,
    f(percentile(quietLat, 50), 2),
    f(percentile(quietLat, 99), 2),
    '1.00×',
    'baseline',
  ])
  return table(['phase', 'ok / sent', 'success', 'p50 ms', 'p99 ms', 'p99 / quiet', 'targets'], rows)
}

/** CPU of each process and of the machine, event-loop delay and the load generator's lag. */
function cpuTable(results: PhaseResult[]): string {
  const head = ['phase', 'relay', 'victim', 'attacker', 'load gen', 'machine busy']
  head.push('loop p99 relay / load gen', 'send lag p99')
  return table(
    head,
    results.map((r) => [
      r.label,
      `${f(r.cpu.relay.cpuPercent, 0)} %`,
      `${f(r.cpu.victim.cpuPercent, 0)} %`,
      `${f(r.cpu.attacker.cpuPercent, 0)} %`,
      `${f(r.cpu.gen.cpuPercent, 0)} %`,
      `${f(r.machineBusy, 0)} % of 2 cores`,
      `${f(r.cpu.relay.loopP99Ms)} / ${f(r.cpu.gen.loopP99Ms)} ms`,
      `${f(r.load.sendLagP99Ms)} ms`,
    ]),
  )
}

/** Print the three tables and the verdict lines. */
export function printReport(results: PhaseResult[]): void {
  const quietLat = pooledQuiet(results)
  const quietP99 = percentile(quietLat, 99)
  const verdicts = results.map((r) => verdict(r, quietP99))
  console.log(
    '\nVictim: 10 req/s through its tunnel (targets per attack: ≥ 99 % success, p99 ≤ 3× the pooled quiet p99)\n',
  )
  console.log(victimTable(results, verdicts, quietLat))
  console.log("\nAttack side: the attacker's outcomes, and the relay during the measuring window\n")
  const attacks = results.filter((r) => r.isAttack)
  const head = ['phase', "attacker's outcomes (whole phase)", 'relay (measuring window)']
  console.log(
    table(
      head,
      attacks.map((r) => [r.label, tally(r.attack), relaySide(r.relay)]),
    ),
  )
  console.log('\nWhere the CPU went (% of one core; the machine has 2 and other work runs on it)\n')
  console.log(cpuTable(results))
  console.log('')
  for (const r of results) {
    if (Object.keys(r.load.failures).length)
      console.log(`victim failures, ${r.label}: ${tally(r.load.failures)}`)
    for (const n of r.notes) console.log(`note, ${r.label}: ${n}`)
  }
  const quietP99s = results.filter((r) => !r.isAttack).map((r) => percentile(r.load.lat, 99))
  const band = `${f(Math.min(...quietP99s), 2)}–${f(Math.max(...quietP99s), 2)} ms`
  console.log(`noise of the sitting: the quiet windows' p99 ranged ${band} (pooled ${f(quietP99, 2)} ms)`)
  const noisiest = Math.max(...quietP99s)
  const context = (v: Verdict) =>
    v.ratio <= TARGET_RATIO
      ? ''
      : v.p99 <= TARGET_RATIO * noisiest
        ? ` (within ${TARGET_RATIO}× the noisiest quiet window's p99, ${f(noisiest, 2)} ms: the machine alone reaches that far)`
        : ` (beyond ${TARGET_RATIO}× even the noisiest quiet window's p99, ${f(noisiest, 2)} ms)`
  const missed = results.flatMap((r, i) => {
    const v = verdicts[i]!
    return v.missed.length ? [`${r.label}: ${v.missed.join('; ')}${context(v)}`] : []
  })
  if (missed.length) console.log(`TARGETS MISSED (${missed.length}):\n  ${missed.join('\n  ')}`)
  else console.log('all targets met')
}
