import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest'
import { InProcessError } from './errors'
import type { InProcessErrorCode } from './errors'
import { InProcessTaskApp } from './in-process-task-app'
import { OPTION_KEYS } from './option-types'
import { validateOptions } from './options'
import { plainApp, testConfig } from './test-helpers'

const dir = mkdtempSync(join(tmpdir(), 'in-process-options-'))
const pyFile = join(dir, 'app.py')
writeFileSync(pyFile, 'print("not ours")\n')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// The env fallbacks must not leak into the cases below.
const ENV_FALLBACKS = [
  'TASKAPP_URL',
  'SYNTH_TASK_APP_URL',
  'SYNTH_CONTAINER_URL',
  'TASKAPP_RELAY_URL',
  'TASKAPP_RELAY_API_KEY',
  'SYNTH_API_KEY',
  'SYNTH_BACKEND_URL',
  'SYNTH_BACKEND_URL_OVERRIDE',
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
const local = { app, tunnel: { mode: 'local' } } as const

const cases: [string, unknown, InProcessErrorCode, RegExp][] = [
  ['options not an object', 'nope', 'TASKAPP_ERR_INVALID_OPTIONS', /options object/],
  [
    'no input',
    { tunnel: { mode: 'local' } },
    'TASKAPP_ERR_NO_INPUT',
    /exactly one of app, config, configFactory or taskAppPath/,
  ],
  [
    'two inputs',
    { app, config: testConfig(), tunnel: { mode: 'local' } },
    'TASKAPP_ERR_MULTIPLE_INPUTS',
    /\(app, config\)/,
  ],
  [
    'unknown (snake_case) option',
    { ...local, tunnel_mode: 'local' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /Unknown option tunnel_mode/,
  ],
  [
    'app not a function',
    { app: {}, tunnel: { mode: 'local' } },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /Express app/,
  ],
  [
    'config not an object',
    { config: 'x', tunnel: { mode: 'local' } },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /TaskAppConfig/,
  ],
  [
    'configFactory not a function',
    { configFactory: {}, tunnel: { mode: 'local' } },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /function/,
  ],
  [
    'taskAppPath missing',
    { taskAppPath: join(dir, 'nope.ts'), tunnel: { mode: 'local' } },
    'TASKAPP_ERR_TASK_APP_NOT_FOUND',
    /does not exist/,
  ],
  [
    'taskAppPath a directory',
    { taskAppPath: dir, tunnel: { mode: 'local' } },
    'TASKAPP_ERR_TASK_APP_NOT_FOUND',
    /not a file/,
  ],
  [
    'taskAppPath a .py file',
    { taskAppPath: pyFile, tunnel: { mode: 'local' } },
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
    'unknown tunnel mode',
    { app, tunnel: { mode: 'ngrok' } },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /Unknown tunnel\.mode "ngrok"/,
  ],
  ['bad tunnel object', { app, tunnel: { name: 'x' } }, 'TASKAPP_ERR_INVALID_OPTIONS', /TunnelBackend/],
  ['tunnel a string', { app, tunnel: 'local' }, 'TASKAPP_ERR_INVALID_OPTIONS', /\{ mode: 'local' \}/],
  [
    'a key of another mode',
    { app, tunnel: { mode: 'local', relayUrl: 'http://127.0.0.1:9' } },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /Unknown tunnel key relayUrl for mode 'local'/,
  ],
  [
    'spec and deprecated flat keys together',
    { app, tunnel: { mode: 'local' }, relayUrl: 'http://127.0.0.1:9' },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /one way/,
  ],
  [
    'preconfigured without URL',
    { app, tunnel: { mode: 'preconfigured' } },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /\{ mode: 'preconfigured', url \} or set TASKAPP_URL/,
  ],
  [
    'preconfigured with a bad URL',
    { app, tunnel: { mode: 'preconfigured', url: 'ftp://x' } },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /http/,
  ],
  [
    'auth header without token',
    { app, tunnel: { mode: 'preconfigured', url: 'http://127.0.0.1:9', authHeader: 'X-A' } },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /go together/,
  ],
  [
    'bad auth header name',
    { app, tunnel: { mode: 'preconfigured', url: 'http://127.0.0.1:9', authHeader: 'X A', authToken: 't' } },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /header name/,
  ],
  [
    'quick install not a boolean',
    { app, tunnel: { mode: 'quick', install: 'yes' } },
    'TASKAPP_ERR_INVALID_OPTIONS',
    /tunnel\.install "yes": expected true, false, or \{ version, sha256, baseUrl, checksumUrl \}/,
  ],
  ['synthtunnel without relay', { app }, 'TASKAPP_ERR_INVALID_OPTIONS', /TASKAPP_RELAY_URL/],
  [
    'named without token',
    { app, tunnel: { mode: 'named' } },
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
        tunnel: { mode: 'synthtunnel', relayUrl: 'http://127.0.0.1:9', relayApiKey: undefined },
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
        tunnel: { mode: 'synthtunnel', relayUrl: 'http://127.0.0.1:7000', relayApiKey: 'relay-key' },
      })
      expect(validateOptions({ app, tunnel: { mode: 'named' } })).toMatchObject({
        tunnel: { mode: 'named', token: 'cf-token', hostname: 'app.example.invalid' },
      })
      expect(validateOptions({ app, apiKey: 'explicit' }).apiKey).toBe('explicit')
    } finally {
      process.env = saved
    }
  })

  it('the apiKey falls back to the names the task server reads: ENVIRONMENT_API_KEY, DEV_…, dev_…', () => {
    const saved = { ...process.env }
    try {
      delete process.env.ENVIRONMENT_API_KEY
      delete process.env.DEV_ENVIRONMENT_API_KEY
      process.env.dev_environment_api_key = ' dev-lower-key '
      expect(validateOptions(local).apiKey).toBe('dev-lower-key')
      process.env.DEV_ENVIRONMENT_API_KEY = 'dev-upper-key'
      expect(validateOptions(local).apiKey).toBe('dev-upper-key')
      process.env.ENVIRONMENT_API_KEY = 'env-key'
      expect(validateOptions(local).apiKey).toBe('env-key')
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

  it('a tunnel backend wins over the deprecated tunnelMode and skips the mode requirements', () => {
    const tunnel = { name: 't', open: () => Promise.reject(new Error('unused')) }
    expect(validateOptions({ app, tunnelMode: 'named', tunnel })).toMatchObject({
      tunnel: { mode: 'custom', backend: tunnel },
    })
  })

  it('resolves each mode of the tunnel spec', () => {
    expect(validateOptions({ app, tunnel: { mode: 'local' } }).tunnel).toEqual({ mode: 'local' })
    expect(validateOptions({ app, tunnel: { mode: 'quick', install: true } }).tunnel).toEqual({
      mode: 'quick',
      cloudflaredPath: undefined,
      install: true,
    })
    expect(
      validateOptions({
        app,
        tunnel: { mode: 'synthtunnel', relayUrl: 'http://127.0.0.1:9/', relayApiKey: 'rk' },
      }).tunnel,
    ).toEqual({ mode: 'synthtunnel', relayUrl: 'http://127.0.0.1:9', relayApiKey: 'rk' })
    expect(
      validateOptions({
        app,
        tunnel: {
          mode: 'preconfigured',
          url: 'https://app.example.invalid/',
          authHeader: 'X-A',
          authToken: 't',
        },
      }).tunnel,
    ).toEqual({ mode: 'preconfigured', url: 'https://app.example.invalid', headers: { 'X-A': 't' } })
    expect(
      validateOptions({ app, tunnel: { mode: 'named', token: 'tok', hostname: 'h.example.invalid' } }).tunnel,
    ).toEqual({
      mode: 'named',
      token: 'tok',
      hostname: 'h.example.invalid',
      cloudflaredPath: undefined,
      install: false,
    })
  })

  it('every documented option key is accepted and nothing else (OPTION_KEYS is the one list)', () => {
    const inputs = ['app', 'config', 'configFactory', 'taskAppPath', 'tunnel']
    for (const key of OPTION_KEYS.filter((k) => !inputs.includes(k))) {
      expect(() => validateOptions({ ...local, [key]: undefined })).not.toThrow()
    }
    expect(OPTION_KEYS).toEqual(expect.arrayContaining([...inputs, 'tunnelMode', 'relayUrl']))
    expect(() => validateOptions({ ...local, tunnelMod: 'local' })).toThrow(/Unknown option tunnelMod/)
  })
})

describe('deprecated flat tunnel options (kept for one minor)', () => {
  it('map onto the same spec and warn once per process with a stable code', async () => {
    vi.resetModules()
    const fresh = await import('./options')
    const warnings: unknown[][] = []
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation((...args: unknown[]) => {
      warnings.push(args)
    })
    onTestFinished(() => spy.mockRestore())
    expect(
      fresh.validateOptions({
        app,
        tunnelMode: 'synthtunnel',
        relayUrl: 'http://127.0.0.1:9',
        relayApiKey: 'rk',
      }).tunnel,
    ).toEqual({ mode: 'synthtunnel', relayUrl: 'http://127.0.0.1:9', relayApiKey: 'rk' })
    expect(
      fresh.validateOptions({
        app,
        tunnelMode: 'preconfigured',
        preconfiguredUrl: 'https://app.example.invalid',
        preconfiguredAuthHeader: 'X-A',
        preconfiguredAuthToken: 't',
      }).tunnel,
    ).toEqual({ mode: 'preconfigured', url: 'https://app.example.invalid', headers: { 'X-A': 't' } })
    expect(
      fresh.validateOptions({ app, tunnelMode: 'named', namedTunnelToken: 'tok', namedTunnelHostname: 'h' })
        .tunnel,
    ).toMatchObject({ mode: 'named', token: 'tok', hostname: 'h' })
    // Flat keys of another mode were ignored before, and still are.
    expect(
      fresh.validateOptions({ app, tunnelMode: 'local', relayUrl: 'http://127.0.0.1:9' }).tunnel,
    ).toEqual({
      mode: 'local',
    })
    expect(warnings).toHaveLength(1)
    expect(warnings[0]?.[0]).toMatch(/tunnelMode, relayUrl, relayApiKey are deprecated: pass tunnel: \{ mode/)
    expect(warnings[0]?.[1]).toEqual({ type: 'DeprecationWarning', code: 'TASKAPP_DEP_FLAT_TUNNEL_OPTIONS' })
  })

  it('still refuse an unknown mode and a lone auth header', () => {
    expect(() => validateOptions({ app, tunnelMode: 'ngrok' })).toThrow(/Unknown tunnel\.mode "ngrok"/)
    expect(() => validateOptions({ ...local, preconfiguredAuthHeader: 'X-A' })).toThrow(/one way/)
    expect(() => validateOptions({ app, tunnelMode: 'local', preconfiguredAuthHeader: 'X-A' })).toThrow(
      /go together/,
    )
  })
})
