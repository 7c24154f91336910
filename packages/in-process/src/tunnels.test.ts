import { join } from 'node:path'
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { InProcessTaskApp } from './in-process-task-app'
import { recordingLogger } from '@taskapp/test-utils'
import { clearRelayEnv, get, plainApp, testConfig, watchQuickTunnel } from './test-helpers'
import { loadTunnelPackage, setTunnelModuleLoader } from './tunnels'
import { acceptsUnsignedLocalCalls, usesContainerAuth } from './load'
import type { ContainerAuthConfig } from '@taskapp/task-server'
import type { TunnelBackend } from './tunnel'

const CLOUDFLARED_DOUBLE = join(
  import.meta.dirname,
  '../../tunnel-cloudflare/src/fixtures/cloudflared-double.cjs',
)

/** A loader that behaves like Node when a package is not installed. */
function missingPackages(...names: string[]) {
  return async (specifier: string): Promise<Record<string, unknown>> => {
    if (names.includes(specifier)) {
      const err = new Error(
        `Cannot find package '${specifier}' imported from /app/index.js`,
      ) as NodeJS.ErrnoException
      err.code = 'ERR_MODULE_NOT_FOUND'
      throw err
    }
    return (await import(specifier)) as Record<string, unknown>
  }
}

describe('optional tunnel packages', () => {
  it.each([
    ['synthtunnel', '@taskapp/tunnel-synth', { relayUrl: 'http://127.0.0.1:9' }],
    ['quick', '@taskapp/tunnel-cloudflare', {}],
    ['named', '@taskapp/tunnel-cloudflare', { token: 't', hostname: 'h.example.invalid' }],
  ] as const)(
    "tunnel mode '%s' without %s → TASKAPP_ERR_TUNNEL_UNAVAILABLE naming it, before anything starts",
    async (mode, pkg, extra) => {
      onTestFinished(setTunnelModuleLoader(missingPackages(pkg)))
      const sigint = process.listenerCount('SIGINT')
      const app = new InProcessTaskApp({ app: plainApp(), port: 0, tunnel: { mode, ...extra } })
      const err = await app.start().then(
        () => undefined,
        (e: unknown) => e as Error,
      )
      expect(err).toMatchObject({ name: 'InProcessError', code: 'TASKAPP_ERR_TUNNEL_UNAVAILABLE' })
      expect(err?.message).toContain(`needs the package ${pkg}`)
      expect(err?.message).toContain(`npm install ${pkg}`)
      expect((err?.cause as NodeJS.ErrnoException).code).toBe('ERR_MODULE_NOT_FOUND')
      expect(() => app.port).toThrow()
      expect(process.listenerCount('SIGINT')).toBe(sigint)
    },
  )

  it("'local' mode never loads a tunnel package", async () => {
    const asked: string[] = []
    onTestFinished(
      setTunnelModuleLoader(async (specifier) => {
        asked.push(specifier)
        throw new Error('must not be called')
      }),
    )
    await using app = await InProcessTaskApp.start({
      app: plainApp(),
      port: 0,
      tunnel: { mode: 'local' },
      handleSignals: false,
    })
    expect(app.url).toBe(app.localUrl)
    expect(asked).toEqual([])
  })

  it('a real import of a package that does not exist is reported as not installed', async () => {
    await expect(
      loadTunnelPackage('@taskapp/tunnel-that-does-not-exist', 'x', 'quick'),
    ).rejects.toMatchObject({
      code: 'TASKAPP_ERR_TUNNEL_UNAVAILABLE',
      message: expect.stringContaining(
        'needs the package @taskapp/tunnel-that-does-not-exist, which is not installed',
      ),
    })
  })

  it('a package without the expected factory → TASKAPP_ERR_TUNNEL_UNAVAILABLE asking for a matching version', async () => {
    onTestFinished(setTunnelModuleLoader(async () => ({ somethingElse: 1 })))
    await expect(
      InProcessTaskApp.start({ app: plainApp(), port: 0, tunnel: { mode: 'quick' }, handleSignals: false }),
    ).rejects.toMatchObject({
      code: 'TASKAPP_ERR_TUNNEL_UNAVAILABLE',
      message: expect.stringContaining('does not export cloudflareQuickTunnel()'),
    })
  })

  it('a package that throws while loading → TASKAPP_ERR_TUNNEL_UNAVAILABLE with the error as cause', async () => {
    const broken = new Error('syntax error in tunnel package')
    onTestFinished(
      setTunnelModuleLoader(async () => {
        throw broken
      }),
    )
    await expect(
      InProcessTaskApp.start({ app: plainApp(), port: 0, tunnel: { mode: 'quick' }, handleSignals: false }),
    ).rejects.toMatchObject({
      code: 'TASKAPP_ERR_TUNNEL_UNAVAILABLE',
      cause: broken,
      message: expect.stringContaining('failed to load'),
    })
  })
})

describe("tunnel mode 'synthtunnel' through a real relay on loopback", () => {
  it('serves the app through the relay with the worker token, and releases the lease on stop', async () => {
    const { createRelayServer } = await import('@taskapp/tunnel-synth/relay')
    const relay = await createRelayServer({ apiKeys: ['relay-key-for-tests'], port: 0, host: '127.0.0.1' })
    onTestFinished(() => relay.close())
    const app = await InProcessTaskApp.start({
      config: testConfig(),
      apiKey: 'task-key-for-relay-test',
      port: 0,
      handleSignals: false,
      tunnel: { mode: 'synthtunnel', relayUrl: relay.url, relayApiKey: 'relay-key-for-tests' },
      verifyTunnel: true,
    })
    onTestFinished(() => app.stop())
    expect(app.tunnelMode).toBe('synthtunnel')
    expect(app.url.startsWith(relay.publicBaseUrl.replace(/\/$/, ''))).toBe(true)
    expect(app.taskAppWorkerToken).toEqual(expect.any(String))
    expect(app.headers).toEqual({ 'X-SynthTunnel-Worker-Token': app.taskAppWorkerToken })
    // A caller with the worker token reaches the app; the agent injects the task key.
    const through = await get(`${app.url}/`, { headers: { ...app.headers } })
    expect(JSON.parse(through.body)).toMatchObject({ service: 'test-app' })
    const health = await get(`${app.url}/health`, { headers: { ...app.headers } })
    expect(health.status).toBe(200)
    // Without the token the relay refuses.
    const refused = await get(`${app.url}/health`)
    expect(refused.status).toBe(401)
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'TUNNEL_AUTH_REQUIRED' })
    expect(relay.stats().agents).toBe(1)
    await app.stop()
    await expect.poll(() => relay.stats().agents, { timeout: 10_000, interval: 10 }).toBe(0)
  })
})

describe("tunnel mode 'synthtunnel' with no relay URL: Synth's backend from SYNTH_BACKEND_URL_OVERRIDE", () => {
  afterEach(() => {
    vi.unstubAllEnvs()
  })

  it.each(['SYNTH_BACKEND_URL_OVERRIDE', 'SYNTH_BACKEND_URL'])(
    'SYNTH_API_KEY + %s pointing at a loopback relay: the public URL is on that relay and works',
    async (variable) => {
      clearRelayEnv()
      const { createRelayServer } = await import('@taskapp/tunnel-synth/relay')
      const relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
      onTestFinished(() => relay.close())
      // Keys go through the environment, as a user sets them; never the production URL.
      vi.stubEnv(variable, `${relay.url}/api/`)
      vi.stubEnv('SYNTH_API_KEY', relay.apiKey)
      vi.stubEnv('BACKEND_BASE_URL', 'http://127.0.0.1:9')
      vi.stubEnv('NEXT_PUBLIC_API_URL', 'http://127.0.0.1:9')
      const app = await InProcessTaskApp.start({
        config: testConfig(),
        port: 0,
        handleSignals: false,
        tunnel: { mode: 'synthtunnel' },
      })
      onTestFinished(() => app.stop())
      expect(app.url.startsWith(`${relay.url}/s/`)).toBe(true)
      expect(relay.stats().agents).toBe(1)
      const health = await get(`${app.url}/health`, { headers: { ...app.headers } })
      expect(health.status).toBe(200)
      expect(JSON.parse(health.body)).toMatchObject({ healthy: true })
    },
  )
})

describe("tunnel mode 'synthtunnel' with container tokens", () => {
  async function relayAndPair() {
    const { generateContainerKeyPair, signContainerToken } = await import('@taskapp/task-server')
    const { createRelayServer } = await import('@taskapp/tunnel-synth/relay')
    const relay = await createRelayServer({ apiKeys: ['relay-key-for-tests'], port: 0, host: '127.0.0.1' })
    onTestFinished(() => relay.close())
    const pair = generateContainerKeyPair({ kid: 'k1' })
    const tokenHeader = async (scope: string) => ({
      'X-Synth-Container-Authorization': `Bearer ${await signContainerToken({
        privateKey: pair.privateKey,
        kid: 'k1',
        scopes: [scope],
        ttlMs: 60_000,
      })}`,
    })
    const tunnel = { mode: 'synthtunnel', relayUrl: relay.url, relayApiKey: 'relay-key-for-tests' } as const
    return { pair, tokenHeader, tunnel }
  }

  it('token-only (no API key anywhere): none is generated, the worker token alone → 401, plus a signed token → 200', async () => {
    const { pair, tokenHeader, tunnel } = await relayAndPair()
    const app = await InProcessTaskApp.start({
      config: testConfig({
        apiKeys: undefined,
        containerAuth: { trustedKeys: pair.trusted, mode: 'required' },
      }),
      port: 0,
      handleSignals: false,
      tunnel,
    })
    onTestFinished(() => app.stop())
    expect(app.apiKey).toBeUndefined()
    expect(app.containerTokens).toBe(true)
    const alone = await get(`${app.url}/task_info`, { headers: { ...app.headers } })
    expect(alone.status).toBe(401)
    expect(JSON.parse(alone.body)).toMatchObject({ detail: { error: { code: 'auth_missing' } } })
    // Any X-API-Key is refused: the app has none, and the agent injects none.
    const guessed = await get(`${app.url}/task_info`, { headers: { ...app.headers, 'x-api-key': 'guess' } })
    expect(guessed.status).toBe(401)
    const signed = await get(`${app.url}/task_info`, {
      headers: { ...app.headers, ...(await tokenHeader('task_info')) },
    })
    expect(signed.status).toBe(200)
    // /health stays open, so the start-up health check needed no key.
    expect((await get(`${app.localUrl}/health`)).status).toBe(200)
  })

  it('both generations (API key and container keys): the agent injects no key; headers carry it, or a token passes', async () => {
    const { pair, tokenHeader, tunnel } = await relayAndPair()
    const app = await InProcessTaskApp.start({
      config: testConfig({ containerAuth: { trustedKeys: pair.trusted, mode: 'required' } }),
      apiKey: 'older-generation-key',
      port: 0,
      handleSignals: false,
      tunnel,
    })
    onTestFinished(() => app.stop())
    expect(app.apiKey).toBe('older-generation-key')
    expect(app.headers).toMatchObject({ 'X-API-Key': 'older-generation-key' })
    const workerTokenOnly = { 'X-SynthTunnel-Worker-Token': app.taskAppWorkerToken! }
    const alone = await get(`${app.url}/task_info`, { headers: workerTokenOnly })
    expect(alone.status).toBe(401)
    const keyed = await get(`${app.url}/task_info`, { headers: { ...app.headers } })
    expect(keyed.status).toBe(200)
    const signed = await get(`${app.url}/task_info`, {
      headers: { ...workerTokenOnly, ...(await tokenHeader('task_info')) },
    })
    expect(signed.status).toBe(200)
  })

  it('the containerAuth option turns tokens on for a config without them, and is refused for a ready-made app', async () => {
    const { generateContainerKeyPair } = await import('@taskapp/task-server')
    const pair = generateContainerKeyPair({ kid: 'k1' })
    const app = await InProcessTaskApp.start({
      config: testConfig({ apiKeys: undefined }),
      containerAuth: { trustedKeys: pair.trusted },
      port: 0,
      handleSignals: false,
      tunnel: { mode: 'local' },
    })
    onTestFinished(() => app.stop())
    expect(app.containerTokens).toBe(true)
    expect(app.apiKey).toBeUndefined()
    const res = await get(`${app.url}/task_info`)
    expect(JSON.parse(res.body)).toMatchObject({ detail: { error: { code: 'auth_missing' } } })
    const ready = new InProcessTaskApp({
      app: (_req, res) => res.end('ok'),
      containerAuth: { trustedKeys: pair.trusted },
      port: 0,
      handleSignals: false,
      tunnel: { mode: 'local' },
    })
    await expect(ready.start()).rejects.toMatchObject({ code: 'TASKAPP_ERR_INVALID_OPTIONS' })
  })

  it.each([
    ['config keys', { trustedKeys: 'k1:AAAA' }, {}, true],
    ['config keys, mode disabled', { trustedKeys: ['k1:AAAA'], mode: 'disabled' }, {}, false],
    ['env keys', undefined, { SYNTH_CONTAINER_TRUSTED_PUBKEYS: 'k1:AAAA' }, true],
    [
      'env keys, env mode disabled',
      undefined,
      { SYNTH_CONTAINER_TRUSTED_PUBKEYS: 'k1:AAAA', SYNTH_CONTAINER_AUTH_MODE: ' Disabled ' },
      false,
    ],
    ['blank env keys', undefined, { SYNTH_CONTAINER_TRUSTED_PUBKEYS: '  ' }, false],
    ['empty config list', { trustedKeys: [] }, { SYNTH_CONTAINER_TRUSTED_PUBKEYS: 'k1:AAAA' }, false],
  ] as const)('usesContainerAuth: %s → %s', (_name, config, env, expected) => {
    expect(usesContainerAuth(config as ContainerAuthConfig | undefined, env)).toBe(expected)
  })

  it.each([
    ['config optional_local', { trustedKeys: 'k1:AAAA', mode: 'optional_local' }, {}, true],
    [
      'env optional_local',
      undefined,
      { SYNTH_CONTAINER_TRUSTED_PUBKEYS: 'k1:AAAA', SYNTH_CONTAINER_AUTH_MODE: 'optional_local' },
      true,
    ],
    ['required', { trustedKeys: 'k1:AAAA', mode: 'required' }, {}, false],
    ['optional_local without keys', { mode: 'optional_local' }, {}, false],
  ] as const)('acceptsUnsignedLocalCalls: %s → %s', (_name, config, env, expected) => {
    expect(acceptsUnsignedLocalCalls(config as ContainerAuthConfig | undefined, env)).toBe(expected)
  })

  it("refuses to start 'optional_local' container auth behind any tunnel, and allows it without one", async () => {
    const { generateContainerKeyPair } = await import('@taskapp/task-server')
    const pair = generateContainerKeyPair({ kid: 'k1' })
    const config = testConfig({ containerAuth: { trustedKeys: pair.trusted, mode: 'optional_local' } })
    const tunnel: TunnelBackend = {
      name: 'never-opened',
      open: () => Promise.reject(new Error('must not be opened')),
    }
    await expect(
      InProcessTaskApp.start({ config, port: 0, handleSignals: false, tunnel }),
    ).rejects.toMatchObject({
      code: 'TASKAPP_ERR_INVALID_OPTIONS',
      message: expect.stringMatching(/optional_local/),
    })
    await using app = await InProcessTaskApp.start({
      config,
      port: 0,
      handleSignals: false,
      tunnel: { mode: 'local' },
    })
    expect(app.state).toBe('running')
  })
})

describe("tunnel mode 'quick' with the cloudflared test double", () => {
  it('loads @taskapp/tunnel-cloudflare lazily, passes cloudflaredPath, and leaves no cloudflared behind', async () => {
    const quick = watchQuickTunnel()
    const logger = recordingLogger()
    const app = await InProcessTaskApp.start({
      app: plainApp(),
      port: 0,
      handleSignals: false,
      tunnel: { mode: 'quick', cloudflaredPath: CLOUDFLARED_DOUBLE },
      logger,
    })
    onTestFinished(() => app.stop())
    expect(app.url).toMatch(/^https:\/\/[a-z0-9-]+\.trycloudflare\.com$/)
    expect(app.headers).toEqual({})
    const pid = quick.opened()?.pid
    expect(pid).toEqual(expect.any(Number))
    // The double really forwards: reach the app through it.
    const forward = JSON.parse((await get(`${quick.opened()!.metricsUrl}/taskapp-double/forward`)).body) as {
      url: string
    }
    expect((await get(`${forward.url}/health`)).status).toBe(200)
    await app.stop()
    expect(() => process.kill(pid!, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }))
  })
})
