import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { InProcessErrorCode } from './errors'
import { InProcessTaskApp } from './in-process-task-app'
import { get } from './test-helpers'

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
