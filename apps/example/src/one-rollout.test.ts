import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnFixture } from '@taskapp/test-utils'
import { describe, expect, it } from 'vitest'

const FILE = join(import.meta.dirname, 'one-rollout.ts')

describe('src/one-rollout.ts (the README snippet)', () => {
  it('is what the README shows, from its first import on', () => {
    const code = readFileSync(FILE, 'utf8')
    const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8')
    expect(readme).toContain(`\`\`\`ts\n${code.slice(code.indexOf('\nimport ') + 1)}\`\`\`\n`)
  })

  it('runs: one rollout of ticket 3 of the test split, scored, then the app stops and the process exits 0', async () => {
    await using run = spawnFixture(FILE)
    const exit = await run.exited
    expect(exit, run.stderr()).toEqual({ code: 0, signal: null })
    const reward = JSON.parse(run.stdout()) as { outcome_reward: number; details: { seed: number } }
    expect([0, 1]).toContain(reward.outcome_reward)
    expect(reward.details).toMatchObject({ seed: 3, split: 'test' })
  })
})
