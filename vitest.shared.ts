/**
 * Shared Vitest project settings: every package's `vitest.config.ts` calls
 * `taskappProject(import.meta.dirname)`. The `@taskapp/source` condition makes workspace
 * imports resolve to `src/` so tests never wait for a build.
 */
import { basename } from 'node:path'
import { defineProject } from 'vitest/config'

const conditions = ['@taskapp/source', 'node', 'import', 'module', 'default']

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
