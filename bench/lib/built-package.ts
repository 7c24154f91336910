/**
 * Benchmarks measure packages as users run them: the built `dist/` (plain JS), not the TypeScript
 * source through tsx, whose keepNames wrappers tax every closure.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/**
 * URL of `packages/<name>/dist/<entry>`, building the package first when that file is missing or
 * older than any source file.
 */
export function builtEntry(name: string, entry = 'index.js'): URL {
  const packageDir = fileURLToPath(new URL(`../../packages/${name}/`, import.meta.url))
  const dist = new URL(`../../packages/${name}/dist/${entry}`, import.meta.url)
  const srcDir = `${packageDir}src`
  const newestSource = Math.max(
    ...readdirSync(srcDir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .map((f) => statSync(`${srcDir}/${f}`).mtimeMs),
  )
  let built = 0
  try {
    built = statSync(fileURLToPath(dist)).mtimeMs
  } catch {
    // not built yet
  }
  if (built > newestSource) return dist
  console.log(`bench: building @taskapp/${name} first (dist/ is missing or stale)`)
  const r = spawnSync('pnpm', ['--filter', `@taskapp/${name}`, 'build'], { stdio: 'ignore' })
  if (r.status !== 0)
    throw new Error(`building @taskapp/${name} failed; run \`pnpm --filter @taskapp/${name} build\``)
  return dist
}
