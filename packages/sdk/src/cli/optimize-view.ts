/**
 * What `taskapp optimize` shows: progress on stderr while the job runs (on a terminal one line
 * redrawn in place: generation, rollouts used of the budget, best score so far, elapsed; else a
 * line per step and per generation), the final table on stdout, or with `--json` one JSON event
 * per line on stdout.
 */
import type { InProcessJobResult, InProcessJobUpdate } from '../run-job-options'
import type { JobProgress } from '../job-progress'
import type { CliIo } from './output'

const CLEAR = '\r\x1b[2K'

function score(value: number | undefined): string {
  return value === undefined ? '–' : value.toFixed(3)
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`
}

/** `3 generations`, `1 generation`, `? generations`. */
function plural(n: number | undefined, noun: string): string {
  return `${n ?? '?'} ${noun}${n === 1 ? '' : 's'}`
}

/** `gen 2/6 · rollouts 180/1200 · best 0.340 (baseline 0.260) · 4.2 s` */
export function progressLine(p: JobProgress, elapsedMs = p.elapsedMs): string {
  const gen =
    p.generation === undefined
      ? 'starting'
      : p.generation === 0
        ? 'baseline'
        : `gen ${p.generation}/${p.generations ?? '?'}`
  const rollouts = `rollouts ${p.rolloutsUsed ?? 0}/${p.rolloutBudget ?? '?'}`
  const best =
    p.bestScore === undefined ? 'best –' : `best ${score(p.bestScore)} (baseline ${score(p.baselineScore)})`
  return `${gen} · ${rollouts} · ${best} · ${seconds(elapsedMs)}`
}

/**
 * The final table: the job, baseline vs optimized validation score, the best prompt.
 *
 * @example
 * ```ts
 * io.stdout.write(resultTable(out, progress))
 * ```
 */
export function resultTable(out: InProcessJobResult, p: JobProgress): string {
  const r = out.result
  const gain =
    r?.bestScore !== undefined && r.baselineScore !== undefined
      ? `  (${r.bestScore - r.baselineScore >= 0 ? '+' : ''}${(r.bestScore - r.baselineScore).toFixed(3)})`
      : ''
  const lines = [
    `job ${out.jobId} ${out.status} in ${seconds(p.elapsedMs)}: ${p.rolloutsUsed ?? '?'} rollouts of ${p.rolloutBudget ?? '?'}, ` +
      `${plural(r?.generationsCompleted ?? p.generation, 'generation')}, ${plural(r?.candidatesEvaluated ?? p.candidatesEvaluated, 'candidate')}`,
    '',
    '  prompt      validation score',
    `  baseline    ${score(r?.baselineScore)}`,
    `  optimized   ${score(r?.bestScore)}${gain}`,
    '',
    'best prompt:',
    ...(r?.bestPrompt ?? '(none)').split('\n').map((line) => `  ${line}`),
  ]
  return `${lines.join('\n')}\n`
}

/** The JSON line of an update (`--json`). */
function jsonOf(u: InProcessJobUpdate): Record<string, unknown> | undefined {
  const p = u.progress
  switch (u.phase) {
    case 'task-app-started':
      return { event: 'task_app_started', url: u.taskAppUrl, tunnel: u.tunnelMode, elapsedMs: p.elapsedMs }
    case 'submitted':
      return { event: 'submitted', jobId: u.jobId, pageUrl: u.pageUrl, elapsedMs: p.elapsedMs }
    case 'event':
      return { event: 'job_event', type: u.event?.type, seq: u.event?.seq, ...p }
    case 'cancelling':
      return { event: 'cancelling', jobId: u.jobId, elapsedMs: p.elapsedMs }
    case 'finished':
      return undefined // the result event says it
  }
}

/** The progress view of one `taskapp optimize` run. */
export class OptimizeView {
  readonly #io: CliIo
  readonly #json: boolean
  readonly #live: boolean
  readonly #lines: boolean
  #last: InProcessJobUpdate | undefined
  /** When {@link OptimizeView.#last} arrived (`performance.now()`), to keep the elapsed time ticking. */
  #receivedAt = 0
  #ticker: NodeJS.Timeout | undefined
  /** The live line is on screen (to be cleared before other output). */
  #shown = false

  /** `progress`: show progress on stderr (off with `--json` and quiet log levels). */
  constructor(io: CliIo, options: { json: boolean; progress: boolean }) {
    this.#io = io
    this.#json = options.json
    this.#lines = !options.json && options.progress
    this.#live = this.#lines && io.stderr.isTTY === true
  }

  /** The last progress seen (for the table). */
  get progress(): JobProgress | undefined {
    return this.#last?.progress
  }

  /** Takes one `onStatus` update. */
  update(u: InProcessJobUpdate): void {
    this.#last = u
    this.#receivedAt = performance.now()
    if (this.#json) {
      const line = jsonOf(u)
      if (line !== undefined) this.#io.stdout.write(`${JSON.stringify(line)}\n`)
      return
    }
    if (!this.#lines) return
    if (u.phase === 'task-app-started') {
      this.#say(`✓ task app running at ${u.taskAppUrl} (${u.tunnelMode} tunnel)`)
    } else if (u.phase === 'submitted') {
      this.#say(`✓ job ${u.jobId} submitted`)
      if (u.pageUrl !== undefined) this.#say(`  watch it live: ${u.pageUrl}`)
      this.#startTicker()
    } else if (u.phase === 'event' && /\.generation\.completed$/.test(u.event?.type ?? '')) {
      this.#say(`  ${progressLine(u.progress)}`)
    } else if (u.phase === 'cancelling') {
      this.#say(`… cancelling job ${u.jobId} on the backend`)
    } else if (u.phase === 'finished' && u.status !== 'succeeded') {
      this.#say(`  job ${u.jobId}: ${u.status}`)
    }
    this.#redraw()
  }

  /** A line on stderr (`--json`: nothing). */
  note(line: string): void {
    if (this.#json) return
    this.#say(line)
    this.#redraw()
  }

  /** The end: the table (or the JSON result event) on stdout. */
  result(out: InProcessJobResult): void {
    this.close()
    const p = this.#last?.progress
    if (this.#json) {
      const r = out.result
      this.#io.stdout.write(
        `${JSON.stringify({
          event: 'result',
          jobId: out.jobId,
          status: out.status,
          baselineScore: r?.baselineScore,
          bestScore: r?.bestScore,
          bestPrompt: r?.bestPrompt,
          rolloutsUsed: p?.rolloutsUsed,
          rolloutBudget: p?.rolloutBudget,
          generations: r?.generationsCompleted,
          candidates: r?.candidatesEvaluated,
          error: r?.error,
          elapsedMs: p?.elapsedMs,
          taskAppUrl: out.taskAppUrl,
          backendUrl: out.backendUrl,
          pageUrl: out.pageUrl,
        })}\n`,
      )
      return
    }
    if (out.status === 'succeeded' && p !== undefined) this.#io.stdout.write(resultTable(out, p))
  }

  /** A JSON error event (`--json` only; the message goes to stderr anyway). */
  error(code: string | undefined, message: string, exitCode: number): void {
    this.close()
    if (this.#json) this.#io.stdout.write(`${JSON.stringify({ event: 'error', code, message, exitCode })}\n`)
  }

  /** Stops the ticker and clears the live line. */
  close(): void {
    if (this.#ticker !== undefined) clearInterval(this.#ticker)
    this.#ticker = undefined
    if (this.#live && this.#shown) this.#io.stderr.write(CLEAR)
    this.#shown = false
  }

  #say(line: string): void {
    this.#io.stderr.write(this.#live ? `${CLEAR}${line}\n` : `${line}\n`)
    this.#shown = false
  }

  #redraw(): void {
    const p = this.#last?.progress
    if (!this.#live || this.#ticker === undefined || p === undefined) return
    this.#shown = true
    const elapsed = p.elapsedMs + (performance.now() - this.#receivedAt)
    this.#io.stderr.write(`${CLEAR}⠿ ${progressLine(p, elapsed)}`)
  }

  #startTicker(): void {
    if (!this.#live || this.#ticker !== undefined) return
    this.#ticker = setInterval(() => this.#redraw(), 250)
    this.#ticker.unref()
  }
}
