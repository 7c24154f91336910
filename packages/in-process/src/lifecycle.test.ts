import { Server as HttpServer } from 'node:http'
import { createServer } from 'node:net'
import { isPortAvailable } from '@taskapp/port-manager'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { InProcessError } from './errors'
import { InProcessTaskApp } from './in-process-task-app'
import { recordingLogger } from '@taskapp/test-utils'
import { fakeTunnel, get, plainApp, testConfig } from './test-helpers'

const base = { port: 0, tunnel: { mode: 'local' }, handleSignals: false } as const

describe('InProcessTaskApp in local mode', () => {
  it('starts from a config, answers /health with the resolved key, and stops', async () => {
    const logger = recordingLogger()
    await using app = await InProcessTaskApp.start({
      ...base,
      config: testConfig(),
      apiKey: 'sk_test_local_1234',
      logger,
    })
    expect(app.state).toBe('running')
    expect(app.url).toBe(`http://127.0.0.1:${app.port}`)
    expect(app.localUrl).toBe(app.url)
    expect(app.host).toBe('127.0.0.1')
    expect(app.tunnelMode).toBe('local')
    // The app wants its key and no tunnel adds it: the caller sends it.
    expect(app.headers).toEqual({ 'X-API-Key': 'sk_test_local_1234' })
    expect(app.taskAppWorkerToken).toBeUndefined()
    expect(app.apiKey).toBe('sk_test_local_1234')
    const ok = await get(`${app.url}/health`, { headers: { 'x-api-key': 'sk_test_local_1234' } })
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.body)).toMatchObject({ healthy: true })
    const denied = await get(`${app.url}/health`, { headers: { 'x-api-key': 'wrong' } })
    expect(denied.status).toBeGreaterThanOrEqual(400)
    const info = logger.records.find((r) => r.level === 'info' && r.msg?.startsWith('task app running'))
    expect(info?.obj.url).toBe(app.url)
    expect(JSON.stringify(logger.records)).not.toContain('sk_test_local_1234')
    const port = app.port
    await app.stop()
    expect(app.state).toBe('stopped')
    expect(await isPortAvailable(port, { host: '127.0.0.1' })).toBe(true)
  })

  it('works with new + start() + stop(), and start() twice returns the same promise', async () => {
    const app = new InProcessTaskApp({
      ...base,
      configFactory: async () => testConfig(),
      apiKey: 'k_factory_12345',
    })
    onTestFinished(() => app.stop())
    expect(app.state).toBe('idle')
    expect(() => app.url).toThrow(expect.objectContaining({ code: 'TASKAPP_ERR_INVALID_STATE' }))
    const first = app.start()
    expect(app.start()).toBe(first)
    await expect(first).resolves.toBe(app)
    expect(app.state).toBe('running')
    await app.stop()
    await expect(app.start()).rejects.toMatchObject({ code: 'TASKAPP_ERR_INVALID_STATE' })
  })

  it('generates a key for this run when none is given anywhere, and never logs it in full', async () => {
    const saved = process.env.ENVIRONMENT_API_KEY
    delete process.env.ENVIRONMENT_API_KEY
    onTestFinished(() => {
      if (saved !== undefined) process.env.ENVIRONMENT_API_KEY = saved
    })
    const logger = recordingLogger()
    await using app = await InProcessTaskApp.start({ ...base, config: testConfig(), logger })
    const key = app.apiKey
    expect(key).toMatch(/^tk_[A-Za-z0-9_-]{32}$/)
    expect((await get(`${app.url}/health`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200)
    expect(JSON.stringify(logger.records)).not.toContain(key)
    expect(logger.records.some((r) => r.msg?.includes('generated'))).toBe(true)
  })

  it('uses ENVIRONMENT_API_KEY when no apiKey option is given', async () => {
    const saved = process.env.ENVIRONMENT_API_KEY
    process.env.ENVIRONMENT_API_KEY = 'env_key_abcdef123'
    onTestFinished(() => {
      if (saved === undefined) delete process.env.ENVIRONMENT_API_KEY
      else process.env.ENVIRONMENT_API_KEY = saved
    })
    await using app = await InProcessTaskApp.start({ ...base, config: testConfig() })
    expect(app.apiKey).toBe('env_key_abcdef123')
    expect((await get(`${app.url}/health`, { headers: { 'x-api-key': 'env_key_abcdef123' } })).status).toBe(
      200,
    )
  })

  it('serves a ready-made request listener and closes its lifecycle on stop', async () => {
    const events: string[] = []
    const app = await InProcessTaskApp.start({ ...base, app: plainApp({ events }) })
    expect((await get(`${app.url}/anything`)).body).toBe('ok')
    await app.stop()
    expect(events).toEqual(['app.close'])
  })

  it('gives several instances distinct ports and URLs', async () => {
    const apps = await Promise.all([1, 2, 3].map(() => InProcessTaskApp.start({ ...base, app: plainApp() })))
    onTestFinished(() => Promise.all(apps.map((a) => a.stop())).then(() => {}))
    const ports = new Set(apps.map((a) => a.port))
    const urls = new Set(apps.map((a) => a.url))
    expect(ports.size).toBe(3)
    expect(urls.size).toBe(3)
    for (const a of apps) expect((await get(`${a.url}/x`)).status).toBe(200)
  })

  it("with onPortConflict 'next' (the default) binds the next free port when the one asked for is taken", async () => {
    await using first = await InProcessTaskApp.start({ ...base, app: plainApp() })
    await using second = await InProcessTaskApp.start({ ...base, port: first.port, app: plainApp() })
    expect(second.port).not.toBe(first.port)
    expect(second.url).toBe(`http://127.0.0.1:${second.port}`)
  })

  it('emits start and stop, and a throwing listener or onStop is logged at WARN without breaking the lifecycle', async () => {
    const logger = recordingLogger()
    const seen: string[] = []
    const app = new InProcessTaskApp({
      ...base,
      app: plainApp(),
      logger,
      onStart: (a) => void seen.push(`onStart:${a.state}`),
      onStop: () => {
        seen.push('onStop')
        throw new Error('onStop boom')
      },
    })
    app.on('start', (a) => {
      seen.push(`start:${a.state}`)
      throw new Error('listener boom')
    })
    app.on('stop', (a) => void seen.push(`stop:${a.state}`))
    await app.start()
    await app.stop()
    expect(seen).toEqual(['onStart:starting', 'start:running', 'onStop', 'stop:stopped'])
    const warns = logger.records.filter((r) => r.level === 'warn').map((r) => r.msg)
    expect(warns).toEqual([
      expect.stringContaining("'start' listener threw"),
      expect.stringContaining('onStop threw'),
    ])
    expect(app.state).toBe('stopped')
  })

  it('binds an IPv6 loopback host and brackets it in the URL', async () => {
    await using app = await InProcessTaskApp.start({ ...base, host: '::1', app: plainApp() })
    expect(app.url).toBe(`http://[::1]:${app.port}`)
    expect((await get(`${app.url}/health`)).status).toBe(200)
  })

  it('maps 0.0.0.0 to a 127.0.0.1 URL when allowNonLoopback is set', async () => {
    await using app = await InProcessTaskApp.start({
      ...base,
      host: '0.0.0.0',
      allowNonLoopback: true,
      app: plainApp(),
    })
    expect(app.host).toBe('0.0.0.0')
    expect(app.url).toBe(`http://127.0.0.1:${app.port}`)
    expect((await get(`${app.url}/health`)).status).toBe(200)
  })
})

describe('preconfigured mode', () => {
  it('uses the given URL without trailing slash and exposes the auth header', async () => {
    await using app = await InProcessTaskApp.start({
      port: 0,
      handleSignals: false,
      app: plainApp(),
      tunnel: {
        mode: 'preconfigured',
        url: 'https://task.example.invalid/base///',
        authHeader: 'X-Proxy-Token',
        authToken: 'proxy-secret',
      },
    })
    expect(app.url).toBe('https://task.example.invalid/base')
    expect(app.headers).toEqual({ 'X-Proxy-Token': 'proxy-secret' })
    expect(app.localUrl).toBe(`http://127.0.0.1:${app.port}`)
  })

  it.each([
    ['TASKAPP_URL', {}],
    ['SYNTH_TASK_APP_URL', { TASKAPP_URL: '' }],
    ['SYNTH_CONTAINER_URL', { TASKAPP_URL: '', SYNTH_TASK_APP_URL: '' }],
  ])('falls back to %s (taskapp first, then synth-ai generations)', async (name, blanks) => {
    onTestFinished(() => void vi.unstubAllEnvs())
    for (const other of ['TASKAPP_URL', 'SYNTH_TASK_APP_URL', 'SYNTH_CONTAINER_URL']) vi.stubEnv(other, '')
    vi.stubEnv(name, `https://${name.toLowerCase()}.example.invalid/`)
    for (const [blank, value] of Object.entries(blanks)) vi.stubEnv(blank, value)
    await using app = await InProcessTaskApp.start({
      port: 0,
      handleSignals: false,
      app: plainApp(),
      tunnel: { mode: 'preconfigured' },
    })
    expect(app.url).toBe(`https://${name.toLowerCase()}.example.invalid`)
    expect(app.headers).toEqual({})
  })

  it('a bad URL in SYNTH_CONTAINER_URL is named by its variable', () => {
    onTestFinished(() => void vi.unstubAllEnvs())
    vi.stubEnv('TASKAPP_URL', '')
    vi.stubEnv('SYNTH_TASK_APP_URL', '')
    vi.stubEnv('SYNTH_CONTAINER_URL', 'ftp://nope')
    expect(
      () => new InProcessTaskApp({ app: plainApp(), port: 0, tunnel: { mode: 'preconfigured' } }),
    ).toThrow(/Invalid SYNTH_CONTAINER_URL "ftp:\/\/nope"/)
  })
})

describe('custom tunnel backends', () => {
  it('opens the tunnel on the bound port and exposes its URL, headers and worker token; closes it on stop', async () => {
    const tunnel = fakeTunnel({ headers: { 'X-SynthTunnel-Worker-Token': 'wt_123' }, workerToken: 'wt_123' })
    const app = await InProcessTaskApp.start({
      port: 0,
      handleSignals: false,
      app: plainApp(),
      tunnel,
    })
    expect(app.tunnelMode).toBe('custom')
    expect(tunnel.opened).toEqual([
      {
        localUrl: `http://127.0.0.1:${app.port}`,
        port: app.port,
        host: '127.0.0.1',
        server: expect.any(HttpServer), // the in-process path: a tunnel may hand requests to it in memory
      },
    ])
    expect(app.url).toBe(`https://fake-tunnel.invalid/${app.port}`)
    expect(app.headers).toEqual({ 'X-SynthTunnel-Worker-Token': 'wt_123' })
    expect(app.taskAppWorkerToken).toBe('wt_123')
    await app.stop()
    expect(tunnel.current?.closeCalls).toBe(1)
  })

  it('takes headers and worker token from the tunnel only: no header name is special', async () => {
    const tunnel = fakeTunnel({ headers: { 'X-SynthTunnel-Worker-Token': 'wt_1', 'X-Other-Gate': 'g' } })
    await using app = await InProcessTaskApp.start({ port: 0, handleSignals: false, app: plainApp(), tunnel })
    expect(app.headers).toEqual({ 'X-SynthTunnel-Worker-Token': 'wt_1', 'X-Other-Gate': 'g' })
    expect(app.taskAppWorkerToken).toBeUndefined()
  })

  it("emits 'tunnel-lost' and logs a WARN when the tunnel dies on its own; the app keeps running", async () => {
    const logger = recordingLogger()
    const tunnel = fakeTunnel()
    await using app = await InProcessTaskApp.start({
      port: 0,
      handleSignals: false,
      app: plainApp(),
      tunnel,
      logger,
    })
    const lost = new Promise((resolve) => app.once('tunnel-lost', resolve))
    tunnel.die(new Error('relay went away'))
    await expect(lost).resolves.toMatchObject({
      url: tunnel.current!.url,
      tunnel: 'fake',
      error: expect.any(Error),
    })
    expect(
      logger.records.some((r) => r.level === 'warn' && r.msg?.includes('tunnel closed on its own')),
    ).toBe(true)
    expect(app.state).toBe('running')
    expect((await get(`${app.localUrl}/health`)).status).toBe(200)
  })

  it("does not emit 'tunnel-lost' when we close the tunnel ourselves", async () => {
    const tunnel = fakeTunnel()
    const app = await InProcessTaskApp.start({ port: 0, handleSignals: false, app: plainApp(), tunnel })
    let lost = 0
    app.on('tunnel-lost', () => void (lost += 1))
    await app.stop()
    await tunnel.current!.closed
    expect(lost).toBe(0)
  })
})

describe('stop()', () => {
  it('is idempotent and safe to call concurrently', async () => {
    const events: string[] = []
    const tunnel = fakeTunnel({ events })
    const app = await InProcessTaskApp.start({
      port: 0,
      handleSignals: false,
      app: plainApp({ events }),
      tunnel,
    })
    let stops = 0
    app.on('stop', () => void (stops += 1))
    const all = [app.stop(), app.stop(), app.stop()]
    expect(all[1]).toBe(all[0])
    await Promise.all(all)
    await app.stop()
    expect(stops).toBe(1)
    expect(events).toEqual(['tunnel.open', 'tunnel.close', 'app.close'])
  })

  it('before start just marks the instance stopped', async () => {
    const app = new InProcessTaskApp({ ...base, app: plainApp() })
    await app.stop()
    expect(app.state).toBe('stopped')
  })

  it('runs every step even if one fails, then rejects with TASKAPP_ERR_STOP_FAILED', async () => {
    const events: string[] = []
    const tunnelError = new Error('tunnel close failed')
    const tunnel = fakeTunnel({ events, closeError: tunnelError })
    const app = await InProcessTaskApp.start({
      port: 0,
      handleSignals: false,
      app: plainApp({ events }),
      tunnel,
      logger: recordingLogger(),
    })
    const port = app.port
    const err = await app.stop().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(InProcessError)
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_STOP_FAILED', cause: tunnelError })
    expect(events).toEqual(['tunnel.open', 'tunnel.close', 'app.close'])
    expect(await isPortAvailable(port, { host: '127.0.0.1' })).toBe(true)
    expect(app.state).toBe('stopped')
  })

  it('called while starting aborts the start and cleans up', async () => {
    const healthGate = createServer()
    onTestFinished(() => void healthGate.close())
    // /health answers 503 so the start waits in the health step until stop() is called.
    const app = new InProcessTaskApp({ ...base, app: plainApp({ healthStatus: 503 }) })
    const started = app.start()
    // app.port throws until the port is bound; vi.waitFor retries while the callback throws.
    await vi.waitFor(() => expect(app.port).toBeGreaterThan(0), { timeout: 10_000, interval: 10 })
    const port = app.port
    await app.stop()
    await expect(started).rejects.toMatchObject({ code: 'TASKAPP_ERR_ABORTED' })
    expect(app.state).toBe('stopped')
    expect(await isPortAvailable(port, { host: '127.0.0.1' })).toBe(true)
  })
})

describe('the signal option', () => {
  it('aborting it stops a running app', async () => {
    const controller = new AbortController()
    const app = await InProcessTaskApp.start({ ...base, app: plainApp(), signal: controller.signal })
    const stopped = new Promise((resolve) => app.once('stop', resolve))
    controller.abort()
    await stopped
    expect(app.state).toBe('stopped')
  })

  it('an aborted signal rejects start() with its reason before anything starts', async () => {
    const reason = new Error('no thanks')
    const app = new InProcessTaskApp({ ...base, app: plainApp(), signal: AbortSignal.abort(reason) })
    await expect(app.start()).rejects.toBe(reason)
    expect(() => app.port).toThrow()
  })

  it('aborting during start rejects with the reason and leaves nothing listening', async () => {
    const controller = new AbortController()
    const reason = new Error('cancelled by test')
    const app = new InProcessTaskApp({
      ...base,
      app: plainApp({ healthStatus: 503 }),
      signal: controller.signal,
    })
    const started = app.start()
    // app.port throws until the port is bound; vi.waitFor retries while the callback throws.
    await vi.waitFor(() => expect(app.port).toBeGreaterThan(0), { timeout: 10_000, interval: 10 })
    controller.abort(reason)
    await expect(started).rejects.toBe(reason)
    expect(await isPortAvailable(app.port, { host: '127.0.0.1' })).toBe(true)
  })
})
