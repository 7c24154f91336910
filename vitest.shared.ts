/**
 * Shared Vitest project settings: every package's `vitest.config.ts` calls
 * `taskappProject(import.meta.dirname)`. The `@taskapp/source` condition makes workspace
 * imports resolve to `src/` so tests never wait for a build.
 */
import { basename } from 'node:path'
import { defineProject } from 'vitest/config'

// Vitest passes `ssr.resolve.conditions` to its workers as `node --conditions`. With `import`
// in that list, Node's own `require()` inside CommonJS dependencies (Express 5's router →
// is-promise) would resolve ESM entries and break; Vite adds `import` / `require` per import
// kind by itself. So only the conditions safe for both loaders are listed.
const conditions = ['@taskapp/source', 'node']

export function taskappProject(dir: string, overrides: { testTimeout?: number } = {}) {
  return defineProject({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@taskapp/source'] } },
    test: {
      name: basename(dir),
      root: dir,
      include: ['src/**/*.test.ts', '*.test.ts', 'test/**/*.test.ts'],
      environment: 'node',
      testTimeout: overrides.testTimeout ?? 20_000,
      hookTimeout: 20_000,
    },
  })
}
