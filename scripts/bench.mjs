#!/usr/bin/env node
// Runs the benchmarks in bench/ (all, or those whose file name contains an argument) one after
// another with tsx, reading workspace packages from source. Each prints its own figures.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const filters = process.argv.slice(2)
const files = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()
if (files.length === 0) {
  console.error(`bench: no benchmark matches ${filters.join(', ') || '(none in bench/)'}`)
  process.exit(1)
}
let failed = 0
for (const file of files) {
  console.log(`\n# ${file}`)
  const r = spawnSync(
    process.execPath,
    ['--conditions=@taskapp/source', '--import', 'tsx', join(root, 'bench', file)],
    { stdio: 'inherit', cwd: root },
  )
  if (r.status !== 0) failed += 1
}
process.exit(failed ? 1 : 0)
