#!/usr/bin/env node
// Runs every test project of the workspace in one Vitest run and prints the closing line
// `N passed, N failed` (summed over all projects) that CI reads. Extra arguments go to Vitest,
// e.g. `pnpm test packages/port-manager`. It builds first (`turbo run build`, cached), since
// `tests/dist-smoke.test.ts` loads the built `dist/` of every package as a user does.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// The Redis and browser tests start their own redis-server and Chromium: say so up front
// rather than failing dozens of tests one by one.
const missing = [
  spawnSync('redis-server', ['--version']).status === 0 ? undefined : 'redis-server',
  existsSync(process.env.TASKAPP_TEST_CHROMIUM ?? '/usr/bin/chromium') ? undefined : 'chromium',
].filter(Boolean)
if (missing.length > 0) {
  console.error(
    `test: missing ${missing.join(' and ')}: install with 'sudo apt-get install -y ${missing.join(' ')}' (bash .ci/run does this for you)`,
  )
  console.log('\n0 passed, 1 failed')
  process.exit(1)
}

const build = spawnSync('pnpm', ['build', '--output-logs=errors-only'], { stdio: 'inherit' })
if (build.status !== 0) {
  console.error('test: the build failed, so the built packages cannot be tested')
  console.log('\n0 passed, 1 failed')
  process.exit(1)
}

const dir = mkdtempSync(join(tmpdir(), 'taskapp-test-'))
const report = join(dir, 'vitest.json')
const args = [
  'exec',
  'vitest',
  'run',
  '--reporter=default',
  // Vitest's JSON reporter, minus its line naming the report file, which is deleted below.
  `--reporter=${join(import.meta.dirname, 'vitest-json-quiet.mjs')}`,
  `--outputFile.json=${report}`,
  ...process.argv.slice(2),
]
const child = spawn('pnpm', args, { stdio: 'inherit' })
const forward = (sig) => child.kill(sig)
process.on('SIGINT', forward)
process.on('SIGTERM', forward)
child.on('exit', (code, signal) => {
  let passed = 0
  let failed = 0
  let skipped = 0
  let readable = false
  try {
    const json = JSON.parse(readFileSync(report, 'utf8'))
    passed = json.numPassedTests ?? 0
    failed = json.numFailedTests ?? 0
    skipped = (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0)
    // A suite that fails to load has no failed test in it; count it so it cannot pass unseen.
    for (const file of json.testResults ?? []) {
      if (file.status === 'failed' && (file.assertionResults ?? []).length === 0) failed += 1
    }
    readable = true
  } catch {
    failed += 1
  }
  rmSync(dir, { recursive: true, force: true })
  console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
  if (!readable) console.error('test: the Vitest JSON report could not be read')
  const ok = code === 0 && failed === 0 && readable && passed > 0
  process.exit(ok ? 0 : signal ? 1 : code || 1)
})
