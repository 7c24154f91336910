/**
 * The README's runnable example, run as a real child process: a whole optimization on one machine.
 */
import { join } from 'node:path'
import { spawnFixture } from '@taskapp/test-utils'
import { describe, expect, it } from 'vitest'
import { createDeterministicModel } from '../model/deterministic-model'

const SCRIPT = join(import.meta.dirname, 'fixtures/try-local-gepa.ts')

function scores(stdout: string): { baseline: number; best: number } {
  const m = /status succeeded: baseline ([\d.]+) -> best ([\d.]+)/.exec(stdout)
  if (m === null) throw new Error(`no result line in:\n${stdout}`)
  return { baseline: Number(m[1]), best: Number(m[2]) }
}

describe('fixtures/try-local-gepa.ts', { timeout: 90_000 }, () => {
  it('runs GEPA over the example with the deterministic model it starts, and improves the prompt', async () => {
    await using run = spawnFixture(SCRIPT, [], { env: { GEPA_GENERATIONS: '1', GEPA_BUDGET: '130' } })
    expect(await run.exited).toEqual({ code: 0, signal: null })
    const { baseline, best } = scores(run.stdout())
    expect(best).toBeGreaterThan(baseline)
    expect(run.stdout()).toMatch(/^#1 job\.started$/m)
    expect(run.stdout()).toContain('If the input mentions')
  })

  it('uses the endpoint and key given in UPSTREAM_BASE_URL and UPSTREAM_API_KEY', async () => {
    await using model = await createDeterministicModel({ apiKey: 'sk-upstream-test-0123' })
    const env = {
      GEPA_GENERATIONS: '1',
      GEPA_BUDGET: '130',
      UPSTREAM_BASE_URL: model.url,
      UPSTREAM_API_KEY: 'sk-upstream-test-0123',
    }
    await using run = spawnFixture(SCRIPT, [], { env })
    expect(await run.exited).toEqual({ code: 0, signal: null })
    expect(run.stdout()).toContain(`model ${model.url}`)
    expect(model.stats.reflection).toBeGreaterThan(0)
    expect(run.stdout()).not.toContain('sk-upstream-test-0123')
  })
})
