import { describe, expect, it } from 'vitest'
import { formatResultsTable, percentile, summarize, type RolloutResult } from './optimizer'

function result(seed: number, score: number | undefined, latencyMs: number): RolloutResult {
  return {
    seed,
    status: score === undefined ? 500 : 200,
    exampleId: score === undefined ? undefined : `tkt-${seed}`,
    expected: score === undefined ? undefined : 'billing',
    predicted: score === undefined ? undefined : score === 1 ? 'billing' : null,
    score,
    latencyMs,
    error: score === undefined ? 'boom' : undefined,
  }
}

describe('percentile (nearest rank)', () => {
  it.each([
    [[], 0.5, 0],
    [[7], 0.95, 7],
    [[1, 2, 3, 4], 0.5, 2],
    [[4, 3, 2, 1], 0.75, 3],
    [[...Array.from({ length: 100 }, (_, i) => i + 1)], 0.95, 95],
    [[...Array.from({ length: 100 }, (_, i) => i + 1)], 0.5, 50],
    [[5, 1], 0, 1],
    [[5, 1], 1, 5],
  ])('%j at %d → %d', (values, q, expected) => {
    expect(percentile(values, q)).toBe(expected)
  })
})

describe('summarize and the table', () => {
  const results = [result(2, 1, 30), result(0, 0, 10), result(1, undefined, 20), result(3, 1, 40)]

  it('means the scores of the succeeded rollouts, takes latency over all', () => {
    expect(summarize(results)).toEqual({
      rollouts: 4,
      succeeded: 3,
      failed: 1,
      meanScore: 2 / 3,
      p50Ms: 20,
      p95Ms: 40,
      maxMs: 40,
    })
    expect(summarize([]).meanScore).toBe(0)
  })

  it('prints one row per rollout in seed order, then the summary', () => {
    const lines = formatResultsTable(results).split('\n')
    expect(lines[0]).toMatch(/^seed\s+example\s+expected\s+predicted\s+score\s+latency ms$/)
    expect(lines.slice(2, 6).map((l) => l.trim().split(/\s+/)[0])).toEqual(['0', '1', '2', '3'])
    expect(lines[2]).toMatch(/tkt-0\s+billing\s+\(none\)\s+0\s+10\.0$/)
    expect(lines[3]).toMatch(/-\s+-\s+-\s+ERR 500\s+20\.0$/)
    expect(lines.at(-1)).toBe(
      'mean score 0.667 over 4 rollouts (1 failed); latency p50 20.0 ms, p95 40.0 ms, max 40.0 ms',
    )
  })
})
