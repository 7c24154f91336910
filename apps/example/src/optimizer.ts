/**
 * A tiny stand-in for a remote optimizer: what the demo does against the public URL (health,
 * task info, N concurrent rollouts), plus the results table and its summary.
 */

/** One rollout as the optimizer saw it. */
export interface RolloutResult {
  readonly seed: number
  /** HTTP status, or 0 when no answer came. */
  readonly status: number
  readonly exampleId: string | undefined
  readonly expected: string | undefined
  readonly predicted: string | null | undefined
  /** `reward_info.outcome_reward`, or `undefined` when the rollout failed. */
  readonly score: number | undefined
  /** Wall time of the HTTP call, as the caller measured it. */
  readonly latencyMs: number
  readonly error: string | undefined
}

/** The summary line of a run. */
export interface RunSummary {
  readonly rollouts: number
  readonly succeeded: number
  readonly failed: number
  /** Mean of the scores of the succeeded rollouts (0 when none). */
  readonly meanScore: number
  readonly p50Ms: number
  readonly p95Ms: number
  readonly maxMs: number
}

/**
 * The `q`-quantile (0..1) of `values` by the nearest-rank method: the smallest value with at
 * least `q` of the values at or below it. Empty input gives 0.
 *
 * @example
 * percentile([1, 2, 3, 4], 0.5) // 2
 */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil(q * sorted.length))
  return sorted[Math.min(rank, sorted.length) - 1] as number
}

/** Summarizes a run: mean score over the successful rollouts, p50/p95/max over all latencies. */
export function summarize(results: readonly RolloutResult[]): RunSummary {
  const ok = results.filter((r) => r.score !== undefined)
  const latencies = results.map((r) => r.latencyMs)
  return {
    rollouts: results.length,
    succeeded: ok.length,
    failed: results.length - ok.length,
    meanScore: ok.length === 0 ? 0 : ok.reduce((sum, r) => sum + (r.score ?? 0), 0) / ok.length,
    p50Ms: percentile(latencies, 0.5),
    p95Ms: percentile(latencies, 0.95),
    maxMs: latencies.length === 0 ? 0 : Math.max(...latencies),
  }
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width)
}

/**
 * The results table, one row per rollout in seed order, then the summary:
 *
 * ```text
 * seed  example   expected   predicted  score  latency ms
 * ...
 * mean score 0.780 over 50 rollouts (0 failed); latency p50 12.3 ms, p95 20.1 ms, max 22.0 ms
 * ```
 */
export function formatResultsTable(results: readonly RolloutResult[]): string {
  const header = ['seed', 'example', 'expected', 'predicted', 'score', 'latency ms']
  const rows = [...results]
    .sort((a, b) => a.seed - b.seed)
    .map((r) => [
      String(r.seed),
      r.exampleId ?? '-',
      r.expected ?? '-',
      r.predicted === undefined ? '-' : (r.predicted ?? '(none)'),
      r.score === undefined ? `ERR ${r.status || ''}`.trim() : r.score.toFixed(0),
      r.latencyMs.toFixed(1),
    ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)))
  const numeric = new Set([0, 4, 5])
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => pad(c, widths[i] ?? 0, numeric.has(i)))
      .join('  ')
      .trimEnd()
  const s = summarize(results)
  return [
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    `mean score ${s.meanScore.toFixed(3)} over ${s.rollouts} rollouts (${s.failed} failed); ` +
      `latency p50 ${s.p50Ms.toFixed(1)} ms, p95 ${s.p95Ms.toFixed(1)} ms, max ${s.maxMs.toFixed(1)} ms`,
  ].join('\n')
}

/** Options of {@link runRollouts}. */
export interface RunRolloutsOptions {
  /** The task app's public base URL. */
  url: string
  /** Headers to send on every call (tunnel headers and the task app key). */
  headers: Readonly<Record<string, string>>
  /** Seeds to run, all at once. */
  seeds: readonly number[]
  /** `env.config.split`. @default 'test' */
  split?: string
  /** The `policy` object of each request. @default { policy_name: 'baseline', config: {} } */
  policy?: { policy_name?: string; config?: Record<string, unknown> }
  /** Deadline of each rollout call. @default 60_000 */
  timeoutMs?: number
  signal?: AbortSignal
}

interface RolloutBody {
  reward_info?: {
    outcome_reward?: number
    details?: { example_id?: string; expected?: string; predicted?: string | null }
  }
  detail?: { error?: { code?: string; message?: string } }
}

/**
 * Posts one rollout per seed to `${url}/rollout`, all concurrently, and measures each call.
 * Never rejects for a failed rollout (its row says why); rejects with `signal.reason` on abort.
 *
 * @example
 * const results = await runRollouts({ url: app.url, headers, seeds: [0, 1, 2] })
 */
export async function runRollouts(options: RunRolloutsOptions): Promise<RolloutResult[]> {
  const split = options.split ?? 'test'
  const policy = options.policy ?? { policy_name: 'baseline', config: {} }
  const one = async (seed: number): Promise<RolloutResult> => {
    const signal = AbortSignal.any([
      ...(options.signal ? [options.signal] : []),
      AbortSignal.timeout(options.timeoutMs ?? 60_000),
    ])
    const started = performance.now()
    try {
      const res = await fetch(`${options.url}/rollout`, {
        method: 'POST',
        headers: { ...options.headers, 'content-type': 'application/json' },
        body: JSON.stringify({
          trace_correlation_id: `demo-${split}-${seed}`,
          env: { seed, config: { split } },
          policy,
        }),
        signal,
      })
      const body = (await res.json().catch(() => ({}))) as RolloutBody
      const latencyMs = performance.now() - started
      const details = body.reward_info?.details
      const score = res.ok ? body.reward_info?.outcome_reward : undefined
      return {
        seed,
        status: res.status,
        exampleId: details?.example_id,
        expected: details?.expected,
        predicted: details?.predicted,
        score,
        latencyMs,
        error: res.ok ? undefined : (body.detail?.error?.message ?? `HTTP ${res.status}`),
      }
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason
      return {
        seed,
        status: 0,
        exampleId: undefined,
        expected: undefined,
        predicted: undefined,
        score: undefined,
        latencyMs: performance.now() - started,
        error: err instanceof Error ? err.message : String(err),
      }
    }
  }
  return Promise.all(options.seeds.map(one))
}
