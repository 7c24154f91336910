import * as core from '@taskapp/core'
import * as cloudflare from '@taskapp/tunnel-cloudflare'
import * as healthChecker from '@taskapp/health-checker'
import * as jobs from '@taskapp/jobs'
import * as jobsBackend from '@taskapp/jobs/backend'
import * as inProcess from '@taskapp/in-process'
import * as portManager from '@taskapp/port-manager'
import * as taskServer from '@taskapp/task-server'
import * as synth from '@taskapp/tunnel-synth'
import * as relay from '@taskapp/tunnel-synth/relay'
import { describe, expect, it } from 'vitest'
import * as sdk from './index'
import { SdkError } from './errors'

const packages: [string, Record<string, unknown>][] = [
  ['@taskapp/core', core],
  ['@taskapp/in-process', inProcess],
  ['@taskapp/task-server', taskServer],
  ['@taskapp/port-manager', portManager],
  ['@taskapp/health-checker', healthChecker],
  ['@taskapp/tunnel-synth', synth],
  ['@taskapp/tunnel-synth/relay', relay],
  ['@taskapp/tunnel-cloudflare', cloudflare],
  ['@taskapp/jobs', jobs],
  ['@taskapp/jobs/backend', jobsBackend],
]

describe('the facade', () => {
  it.each(packages)('re-exports every runtime export of %s, the same object', (_name, mod) => {
    const exported = sdk as unknown as Record<string, unknown>
    const missing = Object.keys(mod).filter((key) => !(key in exported))
    expect(missing).toEqual([])
    for (const key of Object.keys(mod)) expect(exported[key]).toBe(mod[key])
  })

  it('exports nothing else than those packages and its own helpers', () => {
    const known = new Set(packages.flatMap(([, mod]) => Object.keys(mod)))
    const own = Object.keys(sdk)
      .filter((key) => !known.has(key))
      .sort()
    expect(own).toEqual([
      'JobProgressTracker',
      'SdkError',
      'SdkErrorCode',
      'TUNNEL_BACKEND_MODES',
      'createTunnel',
      'runInProcessJob',
    ])
  })
})

describe('createTunnel (every tunnel registered)', () => {
  it.each([
    { spec: { mode: 'synthtunnel', backendUrl: 'http://127.0.0.1:9', apiKey: 'k' }, name: 'synthtunnel' },
    { spec: { mode: 'quick', cloudflaredPath: '/bin/true' }, name: /quick/ },
    {
      spec: { mode: 'named', token: 't', hostname: 'app.example.com', cloudflaredPath: '/bin/true' },
      name: /named/,
    },
  ] as const)('$spec.mode → a TunnelBackend', ({ spec, name }) => {
    const backend = sdk.createTunnel(spec)
    expect(typeof backend.open).toBe('function')
    expect(backend.name).toMatch(name)
  })

  it('an unknown mode throws TASKAPP_ERR_UNKNOWN_TUNNEL_MODE naming the modes', () => {
    let caught: unknown
    try {
      sdk.createTunnel({ mode: 'ngrok' } as unknown as sdk.TunnelBackendSpec)
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(SdkError)
    expect(caught).toMatchObject({ name: 'SdkError', code: 'TASKAPP_ERR_UNKNOWN_TUNNEL_MODE' })
    expect((caught as Error).message).toContain('use one of synthtunnel, quick, named')
  })

  it('the tunnel packages InProcessTaskApp loads lazily resolve from here', async () => {
    await expect(import('@taskapp/tunnel-synth')).resolves.toHaveProperty('synthTunnel')
    await expect(import('@taskapp/tunnel-cloudflare')).resolves.toHaveProperty('cloudflareQuickTunnel')
  })
})
