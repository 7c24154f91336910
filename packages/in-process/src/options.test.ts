import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InProcessError } from './errors'
import type { InProcessErrorCode } from './errors'
import { InProcessTaskApp } from './in-process-task-app'
import { validateOptions } from './options'
import { plainApp, testConfig } from './test-utils'

const dir = mkdtempSync(join(tmpdir(), 'in-process-options-'))
const pyFile = join(dir, 'app.py')
writeFileSync(pyFile, 'print("not ours")\n')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// The env fallbacks must not leak into the cases below.
const ENV_FALLBACKS = [
  'TASKAPP_URL',
  'TASKAPP_RELAY_URL',
  'SYNTH_BACKEND_URL',
  'CLOUDFLARE_TUNNEL_TOKEN',
  'CLOUDFLARE_TUNNEL_HOSTNAME',
]
const savedEnv = Object.fromEntries(ENV_FALLBACKS.map((name) => [name, process.env[name]]))
beforeAll(() => {
  for (const name of ENV_FALLBACKS) delete process.env[name]
})
afterAll(() => {
  for (const [name, value] of Object.entries(savedEnv)) if (value !== undefined) process.env[name] = value
})

const app = plainApp()
const local = { app, tunnelMode: 'local' } as const

const cases: [string, unknown, InProcessErrorCode, RegExp][] = [
  ['options not an object', 'nope', 'TASKAPP_ERR_INVALID_OPTIONS', /options object/],
  [
    'no input',
    { tunnelMode: 'local' },
    'TASKAPP_ERR_NO_INPUT',
    /exactly one of app, config, configFactory or taskAppPath/,
  ],
  [
    'two inputs',
    { app, config: testConfig(), tunnelMode: 'local' },
    'TASKAPP_ERR_MULTIPLE_INPUTS',
    /\(app, config\)/,
  ],
  [
    'unknown (snake_case) option',
    { ...local, tunnel_mode: 'local' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /Unknown option tunnel_mode/,
  ],
  ['app not a function', { app: {}, tunnelMode: 'local' }, 'TASKAPP_ERR_INVALID_OPTIONS', /Express app/],
  [
    'config not an object',
    { config: 'x', tunnelMode: 'local' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /TaskAppConfig/,
  ],
  [
    'configFactory not a function',
    { configFactory: {}, tunnelMode: 'local' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /function/,
  ],
  [
    'taskAppPath missing',
    { taskAppPath: join(dir, 'nope.ts'), tunnelMode: 'local' },
    'TASKAPP_ERR_TASK_APP_NOT_FOUND',
    /does not exist/,
  ],
  [
    'taskAppPath a directory',
    { taskAppPath: dir, tunnelMode: 'local' },
    'TASKAPP_ERR_TASK_APP_NOT_FOUND',
    /not a file/,
  ],
  [
    'taskAppPath a .py file',
    { taskAppPath: pyFile, tunnelMode: 'local' },
    'TASKAPP_ERR_TASK_APP_INVALID',
    /\.ts, \.mts, \.js or \.mjs/,
  ],
  ['port below 1024', { ...local, port: 80 }, 'TASKAPP_ERR_INVALID_PORT', /\[1024, 65535\]/],
  ['port above 65535', { ...local, port: 70000 }, 'TASKAPP_ERR_INVALID_PORT', /\[1024, 65535\]/],
  ['port not an integer', { ...local, port: 8114.5 }, 'TASKAPP_ERR_INVALID_PORT', /integer/],
  ['port a string', { ...local, port: '8114' }, 'TASKAPP_ERR_INVALID_PORT', /integer/],
  ['non-loopback host', { ...local, host: '0.0.0.0' }, 'TASKAPP_ERR_INVALID_HOST', /allowNonLoopback/],
  ['LAN host', { ...local, host: '192.168.1.5' }, 'TASKAPP_ERR_INVALID_HOST', /not a loopback/],
  ['empty host', { ...local, host: '' }, 'TASKAPP_ERR_INVALID_HOST', /127\.0\.0\.1/],
  [
    'unknown tunnelMode',
    { app, tunnelMode: 'ngrok' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /Unknown tunnelMode "ngrok"/,
  ],
  ['bad tunnel object', { ...local, tunnel: { name: 'x' } }, 'TASKAPP_ERR_INVALID_OPTIONS', /TunnelBackend/],
  [
    'preconfigured without URL',
    { app, tunnelMode: 'preconfigured' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /preconfiguredUrl or set TASKAPP_URL/,
  ],
  [
    'preconfigured with a bad URL',
    { app, tunnelMode: 'preconfigured', preconfiguredUrl: 'ftp://x' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /http/,
  ],
  [
    'auth header without token',
    { ...local, preconfiguredAuthHeader: 'X-A' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /go together/,
  ],
  [
    'bad auth header name',
    { ...local, preconfiguredAuthHeader: 'X A', preconfiguredAuthToken: 't' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /header name/,
  ],
  ['synthtunnel without relay', { app }, 'TASKAPP_ERR_INVALID_OPTIONS', /TASKAPP_RELAY_URL/],
  [
    'named without token',
    { app, tunnelMode: 'named' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /CLOUDFLARE_TUNNEL_TOKEN/,
  ],
  [
    'healthCheckTimeoutMs 0',
    { ...local, healthCheckTimeoutMs: 0 },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /healthCheckTimeoutMs/,
  ],
  ['stopGraceMs negative', { ...local, stopGraceMs: -1 }, 'TASKAPP_ERR_INVALID_OPTIONS', /stopGraceMs/],
  [
    'unknown onPortConflict',
    { ...local, onPortConflict: 'steal' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /'next', 'error' or 'kill'/,
  ],
  [
    'verifyTunnel not boolean',
    { ...local, verifyTunnel: 'yes' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /true or false/,
  ],
  [
    'handleSignals not boolean',
    { ...local, handleSignals: 1 },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /true or false/,
  ],
  ['onStart not a function', { ...local, onStart: 'x' }, 'TASKAPP_ERR_INVALID_OPTIONS', /onStart/],
  ['logger without methods', { ...local, logger: { info() {} } }, 'TASKAPP_ERR_INVALID_OPTIONS', /logger/],
  ['signal not an AbortSignal', { ...local, signal: {} }, 'TASKAPP_ERR_INVALID_OPTIONS', /AbortSignal/],
  ['empty apiKey', { ...local, apiKey: '' }, 'TASKAPP_ERR_INVALID_OPTIONS', /apiKey/],
]

describe('option validation', () => {
  it.each(cases)('%s → %s', async (_name, options, code, message) => {
    const sigint = process.listenerCount('SIGINT')
    const sigterm = process.listenerCount('SIGTERM')
    let thrown: unknown
    try {
      new InProcessTaskApp(options as never)
    } catch (err) {
      thrown = err
    }
    expect(thrown).toBeInstanceOf(InProcessError)
    expect(thrown).toMatchObject({ name: 'InProcessError', code })
    expect((thrown as Error).message).toMatch(message)
    // The static form rejects (never throws synchronously) with the same error.
    await expect(InProcessTaskApp.start(options as never)).rejects.toMatchObject({ code })
    // Nothing happened: no signal handler was installed.
    expect(process.listenerCount('SIGINT')).toBe(sigint)
    expect(process.listenerCount('SIGTERM')).toBe(sigterm)
  })

  it('applies defaults', () => {
    const saved = { ...process.env }
    try {
      delete process.env.ENVIRONMENT_API_KEY
      process.env.TASKAPP_RELAY_URL = 'http://127.0.0.1:9/'
      const o = validateOptions({ app })
      expect(o).toMatchObject({
        port: 8114,
        host: '127.0.0.1',
        tunnelMode: 'synthtunnel',
        relayUrl: 'http://127.0.0.1:9',
        healthCheckTimeoutMs: 30_000,
        stopGraceMs: 5_000,
        onPortConflict: 'next',
        verifyTunnel: false,
        handleSignals: true,
        allowNonLoopback: false,
        apiKey: undefined,
      })
    } finally {
      process.env = saved
    }
  })

  it('reads env fallbacks: ENVIRONMENT_API_KEY, SYNTH_BACKEND_URL + SYNTH_API_KEY, CLOUDFLARE_TUNNEL_*', () => {
    const saved = { ...process.env }
    try {
      delete process.env.TASKAPP_RELAY_URL
      process.env.ENVIRONMENT_API_KEY = 'env-key'
      process.env.SYNTH_BACKEND_URL = 'http://127.0.0.1:7000'
      process.env.SYNTH_API_KEY = 'relay-key'
      process.env.CLOUDFLARE_TUNNEL_TOKEN = 'cf-token'
      process.env.CLOUDFLARE_TUNNEL_HOSTNAME = 'app.example.invalid'
      expect(validateOptions({ app })).toMatchObject({
        apiKey: 'env-key',
        relayUrl: 'http://127.0.0.1:7000',
        relayApiKey: 'relay-key',
      })
      expect(validateOptions({ app, tunnelMode: 'named' })).toMatchObject({
        namedTunnelToken: 'cf-token',
        namedTunnelHostname: 'app.example.invalid',
      })
      expect(validateOptions({ app, apiKey: 'explicit' }).apiKey).toBe('explicit')
    } finally {
      process.env = saved
    }
  })

  it('accepts port 0 (any free port), loopback hosts, and 0.0.0.0 with allowNonLoopback', () => {
    expect(validateOptions({ ...local, port: 0 }).port).toBe(0)
    expect(validateOptions({ ...local, host: 'localhost' }).host).toBe('localhost')
    expect(validateOptions({ ...local, host: '::1' }).host).toBe('::1')
    expect(validateOptions({ ...local, host: '0.0.0.0', allowNonLoopback: true }).host).toBe('0.0.0.0')
  })

  it('a tunnel backend wins over tunnelMode and skips the mode requirements', () => {
    const tunnel = { name: 't', open: () => Promise.reject(new Error('unused')) }
    expect(validateOptions({ app, tunnelMode: 'named', tunnel })).toMatchObject({
      tunnelMode: 'custom',
      tunnel,
    })
  })
})
