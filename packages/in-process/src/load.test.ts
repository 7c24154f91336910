import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { InProcessError, type InProcessErrorCode } from './errors'
import { InProcessTaskApp } from './in-process-task-app'
import { get } from './test-helpers'
import { importTypeScript } from './ts-import'

const fixture = (name: string): string => join(import.meta.dirname, 'fixtures', name)
const base = {
  port: 0,
  tunnel: { mode: 'local' },
  handleSignals: false,
  apiKey: 'fixture-key-123456',
} as const

describe('taskAppPath', () => {
  it.each([
    ['config-default.ts', 'default export (a config) wins over app', 'fixture-default-config'],
    ['build-config.mts', 'async buildConfig in .mts', 'fixture-build-config'],
    ['config-export.js', 'config export in plain .js', 'fixture-config-export'],
    ['default-factory.ts', 'default export: a factory', 'fixture-default-factory'],
  ])('%s: %s', async (file, _what, appId) => {
    await using app = await InProcessTaskApp.start({ ...base, taskAppPath: fixture(file) })
    const root = await get(`${app.url}/`)
    expect(JSON.parse(root.body)).toMatchObject({ service: appId })
    // The resolved key was given to the server: the health check passed with it, and so does a caller.
    expect((await get(`${app.url}/health`, { headers: { 'x-api-key': base.apiKey } })).status).toBe(200)
  })

  it.each([
    ['app-export.mjs', 'app-export.mjs'],
    ['default-listener.ts', 'default-listener.ts'],
  ])('%s: a request listener is served as is', async (file, from) => {
    await using app = await InProcessTaskApp.start({ ...base, taskAppPath: fixture(file) })
    expect(JSON.parse((await get(`${app.url}/anything`)).body)).toEqual({ from })
  })

  it('a .ts file in a CommonJS package loads as ESM: top-level await, relative .ts imports', async () => {
    await using app = await InProcessTaskApp.start({
      ...base,
      taskAppPath: fixture(join('commonjs-project', 'task-app.ts')),
    })
    expect(JSON.parse((await get(`${app.url}/`)).body)).toMatchObject({ service: 'fixture-commonjs-project' })
  })

  it('accepts a path relative to the working directory', async () => {
    const relative = join('src', 'fixtures', 'app-export.mjs')
    const cwd = process.cwd()
    process.chdir(join(import.meta.dirname, '..'))
    try {
      await using app = await InProcessTaskApp.start({ ...base, taskAppPath: relative })
      expect((await get(`${app.url}/x`)).status).toBe(200)
    } finally {
      process.chdir(cwd)
    }
  })

  it.each<[string, InProcessErrorCode, RegExp]>([
    [
      'no-export.ts',
      'TASKAPP_ERR_TASK_APP_INVALID',
      /expected one of default, app, buildConfig, config; found (bar, foo|foo, bar)/,
    ],
    ['bad-default.ts', 'TASKAPP_ERR_TASK_APP_INVALID', /export 'default' is a number/],
    ['bad-config.ts', 'TASKAPP_ERR_TASK_APP_INVALID', /createTaskApp rejected the config: .*rollout/],
    ['throws-on-import.ts', 'TASKAPP_ERR_TASK_APP_LOAD_FAILED', /fixture import failure/],
    [
      'factory-throws.ts',
      'TASKAPP_ERR_TASK_APP_LOAD_FAILED',
      /buildConfig'\(\) threw: fixture buildConfig failure/,
    ],
  ])('%s → %s, nothing started', async (file, code, message) => {
    const sigint = process.listenerCount('SIGINT')
    const app = new InProcessTaskApp({ ...base, handleSignals: true, taskAppPath: fixture(file) })
    const err = await app.start().then(
      () => undefined,
      (e: unknown) => e as Error,
    )
    expect(err).toMatchObject({ name: 'InProcessError', code })
    expect(err?.message).toMatch(message)
    expect(() => app.port).toThrow()
    expect(app.state).toBe('failed')
    expect(process.listenerCount('SIGINT')).toBe(sigint)
  })
})

describe('configFactory', () => {
  it('a throwing factory → TASKAPP_ERR_TASK_APP_LOAD_FAILED with the original as cause', async () => {
    const original = new Error('factory broke')
    await expect(
      InProcessTaskApp.start({
        ...base,
        configFactory: () => {
          throw original
        },
      }),
    ).rejects.toMatchObject({ code: 'TASKAPP_ERR_TASK_APP_LOAD_FAILED', cause: original })
  })

  it('an invalid config → TASKAPP_ERR_TASK_APP_INVALID naming the problems', async () => {
    await expect(
      InProcessTaskApp.start({ ...base, configFactory: () => ({ appId: 'x' }) as never }),
    ).rejects.toMatchObject({
      code: 'TASKAPP_ERR_TASK_APP_INVALID',
      message: expect.stringMatching(/name must be/),
    })
  })
})

describe('TypeScript files without tsx (an optional peer)', () => {
  /** Fails the way Node's import() does when a package is not installed. */
  const missing = (name: string) => async (): Promise<never> => {
    const err = new Error(
      `Cannot find package '${name}' imported from /app/node_modules/@taskapp/in-process/dist/index.js`,
    ) as NodeJS.ErrnoException
    err.code = 'ERR_MODULE_NOT_FOUND'
    throw err
  }

  it('tsx not installed → TASKAPP_ERR_TSX_MISSING naming the package to add', async () => {
    const err = await importTypeScript(fixture('config-default.ts'), missing('tsx')).then(
      () => undefined,
      (e: unknown) => e as InProcessError,
    )
    expect(err).toBeInstanceOf(InProcessError)
    expect(err?.code).toBe('TASKAPP_ERR_TSX_MISSING')
    expect(err?.message).toContain('config-default.ts needs the package tsx')
    expect(err?.message).toContain('npm install tsx')
    expect((err?.cause as NodeJS.ErrnoException).code).toBe('ERR_MODULE_NOT_FOUND')
  })

  it('another missing package (tsx without esbuild) is passed on as it is', async () => {
    await expect(importTypeScript(fixture('config-default.ts'), missing('esbuild'))).rejects.toThrow(
      "Cannot find package 'esbuild'",
    )
  })
})
