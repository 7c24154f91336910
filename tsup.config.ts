/**
 * The one tsup config every package builds with (`tsup --config ../../tsup.config.ts`).
 *
 * Entries come from the package's own exports map: every export with a `@taskapp/source`
 * condition is built from that source file, so a package with a subpath export (the relay
 * server beside the tunnel agent) needs no config of its own. `bin` sources listed under
 * `taskapp.binSources` in package.json are built too.
 */
import { readFileSync } from 'node:fs'
import { join, basename } from 'node:path'
import { defineConfig } from 'tsup'

interface PackageJson {
  exports?: Record<string, string | Record<string, string>>
  taskapp?: { binSources?: string[] }
}

const pkg = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as PackageJson

const entry: Record<string, string> = {}
for (const target of Object.values(pkg.exports ?? {})) {
  if (typeof target === 'string') continue
  const source = target['@taskapp/source']
  const out = target.default
  if (source === undefined || out === undefined) continue
  entry[out.replace(/^\.\/dist\//, '').replace(/\.js$/, '')] = source
}
for (const source of pkg.taskapp?.binSources ?? []) {
  entry[basename(source).replace(/\.ts$/, '')] = source
}

export default defineConfig({
  entry,
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  // One shared chunk per module: a package with two entries (the relay beside the agent, the CLI
  // beside the sdk) must never carry two copies of a module (two error classes, two registries).
  splitting: true,
  treeshake: true,
})
