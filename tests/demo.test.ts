/**
 * End to end: the demo exactly as `pnpm demo` runs it (the example's `demo` script, a real
 * process): relay on 127.0.0.1, the task app behind the relay tunnel, 50 concurrent rollouts
 * through the public URL, a results table; then a prompt optimization on the local jobs backend
 * with the deterministic model through the same relay, whose final table shows the optimized
 * prompt beating the baseline on the validation seeds; a clean stop, exit 0.
 */
import { describe, expect, it } from 'vitest'
import { REPO_ROOT, groupMembers, spawnProcess } from './test-helpers'

/** The scores of the final table (`baseline 0.260`, `optimized 0.600  (+0.340)`). */
function finalTable(out: string): { baseline: number; optimized: number; gain: number } {
  const baseline = /^ {3}baseline +(\d\.\d{3})$/m.exec(out)?.[1]
  const optimized = /^ {3}optimized +(\d\.\d{3}) +\(([+-]\d\.\d{3})\)$/m.exec(out)
  if (baseline === undefined || optimized === null) throw new Error(`no final table in:\n${out}`)
  return { baseline: Number(baseline), optimized: Number(optimized[1]), gain: Number(optimized[2]) }
}

describe('pnpm demo', () => {
  it(
    'runs on its own and exits 0: 50 rollouts, then an optimized prompt that beats the baseline',
    { timeout: 180_000 },
    async () => {
      // `pnpm demo` = `pnpm --filter @taskapp/example demo` = this command in apps/example.
      await using demo = spawnProcess(
        process.execPath,
        ['--conditions=@taskapp/source', '--import', 'tsx', 'src/demo.ts'],
        {
          cwd: `${REPO_ROOT}/apps/example`,
        },
      )
      const exit = await demo.exited
      const out = demo.stdout()
      expect(exit, `stderr:\n${demo.stderr()}\nstdout:\n${out}`).toEqual({ code: 0, signal: null })

      expect(out).toMatch(/^1\. relay +started at http:\/\/127\.0\.0\.1:\d+/m)
      expect(out).toMatch(/^ {3}public URL +http:\/\/127\.0\.0\.1:\d+\/s\/rt_\S+$/m)
      expect(out).toMatch(/^ {3}header +X-SynthTunnel-Worker-Token: /m)
      expect(out).toMatch(/^3\. health +GET \/health → 200 /m)
      expect(out).toMatch(/^4\. task info +GET \/task_info → 200: Support ticket routing/m)
      expect(out).toMatch(/^seed +example +expected +predicted +score +latency ms$/m)
      const rows = out
        .split('\n')
        .filter((line) => /^ *\d+ +tkt-\d{4} +[a-z]+ +\S+ +[01] +\d+\.\d$/.test(line))
      expect(rows).toHaveLength(50)
      expect(rows.map((r) => Number(r.trim().split(/\s+/)[0]))).toEqual(
        Array.from({ length: 50 }, (_, i) => i),
      )
      const summary =
        /^mean score (\d\.\d{3}) over 50 rollouts \(0 failed\); latency p50 [\d.]+ ms, p95 [\d.]+ ms, max [\d.]+ ms$/m.exec(
          out,
        )
      expect(summary).not.toBeNull()
      // The mean is the mean of the printed scores.
      const mean = rows.reduce((sum, r) => sum + Number(r.trim().split(/\s+/)[4]), 0) / rows.length
      expect(Number(summary![1])).toBeCloseTo(mean, 3)
      expect(out).toMatch(/^6\. stopped +task app and tunnel closed/m)
      // The second act: the optimization, through the same relay, with container tokens.
      expect(out).toMatch(
        /^7\. backend +local jobs backend at http:\/\/127\.0\.0\.1:\d+; model deterministic \(built in\)$/m,
      )
      expect(out).toMatch(/^ {3}task app +http:\/\/127\.0\.0\.1:\d+\/s\/rt_\S+ \(synthtunnel tunnel\)$/m)
      expect(out).toMatch(
        /^ {3}watch +http:\/\/127\.0\.0\.1:\d+\/jobs\/pl_[0-9a-f]+ \(live page, from this machine\)$/m,
      )
      expect(out).toMatch(
        /^ {3}gen \d+\/\d+ · rollouts \d+\/\d+ · best \d\.\d{3} \(baseline \d\.\d{3}\) · [\d.]+ s$/m,
      )
      expect(out).toMatch(
        /^9\. result +job pl_[0-9a-f]+ succeeded in [\d.]+ s \(\d+ rollouts of \d+\); task app stopped$/m,
      )
      const table = finalTable(out)
      expect(table.optimized).toBeGreaterThan(table.baseline)
      expect(table.gain).toBeCloseTo(table.optimized - table.baseline, 3)
      expect(out).toMatch(/^ {3}best prompt:\n {5}You route customer-support tickets/m)
      expect(out).toMatch(/^ {5}If the input mentions "\w+", answer "\w+"\.$/m)
      expect(out).toMatch(/^10\. stopped +relay closed$/m)
      expect(out).toMatch(/^demo finished in [\d.]+ s$/m)
      // The worker token and the task app key are shortened in the demo's output.
      expect(out).not.toMatch(/X-SynthTunnel-Worker-Token: wt_[A-Za-z0-9_-]{8,}/)
      expect(groupMembers(demo.pid)).toEqual([])
    },
  )

  it(
    '--tunnel local works too, --skip-optimize plays the first act only, and a bad flag exits 2',
    { timeout: 180_000 },
    async () => {
      await using local = spawnProcess(
        process.execPath,
        [
          '--conditions=@taskapp/source',
          '--import',
          'tsx',
          'src/demo.ts',
          '--tunnel',
          'local',
          '--rollouts',
          '5',
          '--port',
          '0',
        ],
        { cwd: `${REPO_ROOT}/apps/example` },
      )
      expect((await local.exited).code).toBe(0)
      expect(local.stdout()).toMatch(/^1\. relay +none \(--tunnel local\)$/m)
      expect(local.stdout()).toMatch(/over 5 rollouts \(0 failed\)/)
      // No relay: the optimized app is reached directly, with the backend's container tokens.
      expect(local.stdout()).toMatch(/^ {3}task app +http:\/\/127\.0\.0\.1:\d+ \(local tunnel\)$/m)
      const table = finalTable(local.stdout())
      expect(table.optimized).toBeGreaterThan(table.baseline)
      await using skipped = spawnProcess(
        process.execPath,
        [
          '--conditions=@taskapp/source',
          '--import',
          'tsx',
          'src/demo.ts',
          '--skip-optimize',
          '--rollouts',
          '3',
          '--port',
          '0',
        ],
        { cwd: `${REPO_ROOT}/apps/example` },
      )
      expect((await skipped.exited).code).toBe(0)
      expect(skipped.stdout()).toMatch(/^7\. stopped +relay closed$/m)
      expect(skipped.stdout()).not.toContain('8. optimize')
      await using bad = spawnProcess(
        process.execPath,
        ['--conditions=@taskapp/source', '--import', 'tsx', 'src/demo.ts', '--tunnel', 'ngrok'],
        {
          cwd: `${REPO_ROOT}/apps/example`,
        },
      )
      expect((await bad.exited).code).toBe(2)
      expect(bad.stderr()).toContain('--tunnel must be synthtunnel or local')
    },
  )
})
