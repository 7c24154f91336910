import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  CloudflareTunnelError,
  cloudflareQuickTunnel,
  killAllTrackedChildren,
  trackedChildCount,
  verifyTunnel,
} from './index'
import type { CloudflareTunnelOptions } from './index'
import { isProcessAlive as isAlive, recordingLogger } from '@taskapp/test-utils'
import { DOUBLE_PATH, getJson, startOrigin, targetFor } from './test-helpers'

async function pidFile() {
  const dir = await mkdtemp(join(tmpdir(), 'cf-double-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'pids')
  const pids = async () =>
    (await readFile(path, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number)
  return { path, pids }
}

function options(env: Record<string, string>, extra: CloudflareTunnelOptions = {}): CloudflareTunnelOptions {
  return { cloudflaredPath: DOUBLE_PATH, env: { ...process.env, ...env }, ...extra }
}

async function expectTunnelError(promise: Promise<unknown>): Promise<CloudflareTunnelError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(CloudflareTunnelError)
  return err as CloudflareTunnelError
}

describe('cloudflareQuickTunnel against the cloudflared double', () => {
  it('reads the URL from the banner box and resolves only after a connection is registered', async () => {
    await using origin = await startOrigin()
    const logger = recordingLogger()
    const calls = logger.records
    const backend = cloudflareQuickTunnel(
      options(
        {
          CLOUDFLARED_DOUBLE_HOSTNAME: 'buffalo-marco-cardiff-motel.trycloudflare.com',
          CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '800',
        },
        { logger },
      ),
    )
    expect(backend.name).toBe('cloudflare-quick')
    await using tunnel = await backend.open(targetFor(origin))
    expect(tunnel.url).toBe('https://buffalo-marco-cardiff-motel.trycloudflare.com')
    const logged = calls.filter((c) => c.level === 'debug').map((c) => c.msg ?? '')
    const urlAt = logged.findIndex((m) =>
      m.includes('|  https://buffalo-marco-cardiff-motel.trycloudflare.com'),
    )
    const registeredAt = logged.findIndex((m) => m.includes('Registered tunnel connection connIndex=0'))
    expect(urlAt).toBeGreaterThanOrEqual(0)
    expect(registeredAt).toBeGreaterThan(urlAt)
    // The metrics server agrees that the tunnel is up at the moment open() resolved.
    const res = await fetch(`${tunnel.metricsUrl}/ready`)
    expect(res.status).toBe(200)
    expect(isAlive(tunnel.pid)).toBe(true)
    // Command line as documented: no-autoupdate, an explicit {} config, the local URL and loopback metrics.
    const info = await getJson<{ argv: string[] }>(`${tunnel.metricsUrl}/taskapp-double/info`)
    expect(info.argv.slice(0, 3)).toEqual(['tunnel', '--no-autoupdate', '--config'])
    expect(info.argv).toContain('--url')
    expect(info.argv[info.argv.indexOf('--url') + 1]).toBe(origin.url)
    // Metrics on port 0: cloudflared binds a free port itself, and metricsUrl is the address it logged.
    expect(info.argv[info.argv.indexOf('--metrics') + 1]).toBe('127.0.0.1:0')
    const metricsHost = new URL(tunnel.metricsUrl).host
    expect(metricsHost).toMatch(/^127\.0\.0\.1:[1-9]\d*$/)
    expect(
      tunnel.recentOutput().some((l) => l.endsWith(`Starting metrics server on ${metricsHost}/metrics`)),
    ).toBe(true)
  })

  it('does not count a printed URL as open: no registration ends in TASKAPP_ERR_TUNNEL_TIMEOUT', async () => {
    await using origin = await startOrigin()
    const pids = await pidFile()
    const err = await expectTunnelError(
      cloudflareQuickTunnel(
        options(
          {
            CLOUDFLARED_DOUBLE_MODE: 'no-register',
            CLOUDFLARED_DOUBLE_PID_FILE: pids.path,
            CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '100',
          },
          { timeoutMs: 2500 },
        ),
      ).open(targetFor(origin)),
    )
    expect(err.code).toBe('TASKAPP_ERR_TUNNEL_TIMEOUT')
    expect(err.message).toMatch(/printed https:\/\/[a-z-]+\.trycloudflare\.com but registered no connection/)
    expect(err.lines.some((l) => l.includes('Failed to dial a quic connection'))).toBe(true)
    const [pid] = await pids.pids()
    expect(pid).toBeGreaterThan(0)
    expect(isAlive(pid!)).toBe(false)
    expect(trackedChildCount()).toBe(0)
  })

  it('forwards a real request from its loopback port to the origin, and verifyTunnel sees it', async () => {
    await using origin = await startOrigin()
    await using tunnel = await cloudflareQuickTunnel(
      options({ CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50' }),
    ).open(targetFor(origin))
    const forward = await getJson<{ url: string }>(`${tunnel.metricsUrl}/taskapp-double/forward`)
    expect(new URL(forward.url).hostname).toBe('127.0.0.1')
    const res = await fetch(`${forward.url}/rollout?seed=1`, { method: 'POST', body: 'hello' })
    expect(await res.json()).toEqual({ method: 'POST', url: '/rollout?seed=1', body: 'hello' })
    const seen = origin.requests.find((r) => r.url === '/rollout?seed=1')
    expect(seen?.headers['cf-ray']).toMatch(/-DBL$/)
    expect(seen?.headers['x-forwarded-proto']).toBe('https')
    const verified = await verifyTunnel(forward.url, { headers: { 'x-api-key': 'k' }, timeoutMs: 5000 })
    expect(verified.status).toBe(200)
    expect(origin.requests.at(-1)).toMatchObject({ url: '/health', headers: { 'x-api-key': 'k' } })
  })

  it('times out with no URL and leaves no process behind', async () => {
    await using origin = await startOrigin()
    const pids = await pidFile()
    const err = await expectTunnelError(
      cloudflareQuickTunnel(
        options(
          { CLOUDFLARED_DOUBLE_MODE: 'no-url', CLOUDFLARED_DOUBLE_PID_FILE: pids.path },
          { timeoutMs: 1500 },
        ),
      ).open(targetFor(origin)),
    )
    expect(err.code).toBe('TASKAPP_ERR_TUNNEL_TIMEOUT')
    expect(err.message).toContain('printed no tunnel URL within 1500 ms')
    expect(err.lines.at(-1)).toContain('Requesting new quick Tunnel on trycloudflare.com...')
    const [pid] = await pids.pids()
    expect(pid).toBeGreaterThan(0)
    expect(isAlive(pid!)).toBe(false)
    expect(trackedChildCount()).toBe(0)
  })

  it.each([
    {
      mode: 'exit-error',
      code: 'TASKAPP_ERR_CLOUDFLARED_EXITED',
      exitCode: 1,
      line: 'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel"',
    },
    {
      mode: 'rate-limit',
      code: 'TASKAPP_ERR_TUNNEL_RATE_LIMITED',
      exitCode: undefined,
      line: '429 Too Many Requests',
    },
  ])(
    '$mode: rejects with $code carrying the lines cloudflared printed',
    async ({ mode, code, exitCode, line }) => {
      await using origin = await startOrigin()
      const pids = await pidFile()
      const err = await expectTunnelError(
        cloudflareQuickTunnel(
          options({
            CLOUDFLARED_DOUBLE_MODE: mode,
            CLOUDFLARED_DOUBLE_PID_FILE: pids.path,
            CLOUDFLARED_DOUBLE_URL_DELAY_MS: '50',
          }),
        ).open(targetFor(origin)),
      )
      expect(err.code).toBe(code)
      expect(err.lines.some((l) => l.includes(line))).toBe(true)
      expect(err.message).toContain(line)
      if (exitCode !== undefined) expect(err.exitCode).toBe(exitCode)
      // The api.trycloudflare.com in the failure line is never taken for the tunnel URL.
      expect(err.message).not.toContain('Your quick Tunnel has been created')
      for (const pid of await pids.pids()) expect(isAlive(pid)).toBe(false)
      expect(trackedChildCount()).toBe(0)
    },
  )

  it('stops gracefully with SIGTERM, and close() twice (or concurrently) is safe', async () => {
    await using origin = await startOrigin()
    const tunnel = await cloudflareQuickTunnel(options({ CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50' })).open(
      targetFor(origin),
    )
    const first = tunnel.close()
    const second = tunnel.close()
    await Promise.all([first, second])
    await tunnel.close()
    await tunnel[Symbol.asyncDispose]()
    await tunnel.closed
    expect(isAlive(tunnel.pid)).toBe(false)
    expect(tunnel.exitStatus).toEqual({ code: 0, signal: null })
    expect(tunnel.exitError).toBeUndefined()
    expect(
      tunnel.recentOutput().some((l) => l.includes('Initiating graceful shutdown due to signal terminated')),
    ).toBe(true)
    expect(trackedChildCount()).toBe(0)
  })

  it('SIGKILLs a child that ignores SIGTERM after killGraceMs', async () => {
    await using origin = await startOrigin()
    const tunnel = await cloudflareQuickTunnel(
      options(
        { CLOUDFLARED_DOUBLE_MODE: 'ignore-sigterm', CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50' },
        { killGraceMs: 400 },
      ),
    ).open(targetFor(origin))
    onTestFinished(() => tunnel.close())
    await tunnel.close()
    expect(isAlive(tunnel.pid)).toBe(false)
    expect(tunnel.exitStatus).toEqual({ code: null, signal: 'SIGKILL' })
    // It saw the SIGTERM and ignored it before being killed.
    expect(tunnel.recentOutput().some((l) => l.includes('Initiating graceful shutdown'))).toBe(true)
  })

  it('rejects with signal.reason when aborted during open(), leaving no process', async () => {
    await using origin = await startOrigin()
    const pids = await pidFile()
    const controller = new AbortController()
    const reason = new Error('user gave up')
    const logger = recordingLogger()
    const calls = logger.records
    // Abort as soon as the URL is printed, before the connection is registered.
    const abortingLogger = {
      ...logger,
      debug: (obj: Record<string, unknown>, msg?: string) => {
        logger.debug(obj, msg)
        if (msg?.includes('.trycloudflare.com ')) controller.abort(reason)
      },
    }
    const err = await cloudflareQuickTunnel(
      options(
        { CLOUDFLARED_DOUBLE_PID_FILE: pids.path, CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '5000' },
        { logger: abortingLogger },
      ),
    )
      .open(targetFor(origin), { signal: controller.signal })
      .catch((e: unknown) => e)
    expect(err).toBe(reason)
    expect(calls.some((c) => c.msg?.includes('Registered tunnel connection'))).toBe(false)
    const [pid] = await pids.pids()
    expect(isAlive(pid!)).toBe(false)
    expect(trackedChildCount()).toBe(0)
  })

  it('rejects at once, starting nothing, when the signal is already aborted', async () => {
    const pids = await pidFile()
    const reason = new Error('already')
    const err = await cloudflareQuickTunnel(options({ CLOUDFLARED_DOUBLE_PID_FILE: pids.path }))
      .open(
        { localUrl: 'http://127.0.0.1:9', port: 9, host: '127.0.0.1' },
        { signal: AbortSignal.abort(reason) },
      )
      .catch((e: unknown) => e)
    expect(err).toBe(reason)
    expect(await pids.pids()).toEqual([])
  })

  it('settles closed and reports exitError when cloudflared crashes after registering', async () => {
    await using origin = await startOrigin()
    const logger = recordingLogger()
    const calls = logger.records
    const tunnel = await cloudflareQuickTunnel(
      options(
        { CLOUDFLARED_DOUBLE_MODE: 'crash-after-register', CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50' },
        { logger },
      ),
    ).open(targetFor(origin))
    onTestFinished(() => tunnel.close())
    await tunnel.closed
    expect(isAlive(tunnel.pid)).toBe(false)
    expect(tunnel.exitError?.code).toBe('TASKAPP_ERR_CLOUDFLARED_EXITED')
    expect(tunnel.exitError?.exitCode).toBe(2)
    expect(tunnel.exitError?.lines.some((l) => l.startsWith('panic: runtime error'))).toBe(true)
    expect(calls.some((c) => c.level === 'warn' && c.msg?.includes('exited with code 2 unexpectedly'))).toBe(
      true,
    )
    await tunnel.close() // closing a dead tunnel is fine
    expect(tunnel.exitError?.code).toBe('TASKAPP_ERR_CLOUDFLARED_EXITED')
  })

  it('understands --output json logs too', async () => {
    await using origin = await startOrigin()
    await using tunnel = await cloudflareQuickTunnel(
      options({
        TUNNEL_LOG_OUTPUT: 'json',
        CLOUDFLARED_DOUBLE_HOSTNAME: 'lamp-orbit.trycloudflare.com',
        CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50',
      }),
    ).open(targetFor(origin))
    expect(tunnel.url).toBe('https://lamp-orbit.trycloudflare.com')
    expect(tunnel.recentOutput()[0]).toMatch(/^\{"level":"info"/)
  })

  it('runs several tunnels side by side with distinct processes and metrics ports', async () => {
    await using origin = await startOrigin()
    const backend = cloudflareQuickTunnel(options({ CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50' }))
    await using a = await backend.open(targetFor(origin))
    await using b = await backend.open(targetFor(origin))
    expect(a.pid).not.toBe(b.pid)
    expect(a.metricsUrl).not.toBe(b.metricsUrl)
    expect(trackedChildCount()).toBe(2)
    await expect
      .poll(async () => (await fetch(`${b.metricsUrl}/ready`)).status, { timeout: 10_000, interval: 25 })
      .toBe(200)
  })

  it.each([
    { mode: 'silent-register', what: 'no registration line: readiness comes from GET /ready' },
    { mode: 'silent-register,hide-url', what: 'no URL line either: the URL comes from GET /quicktunnel' },
  ])('$what', async ({ mode }) => {
    await using origin = await startOrigin()
    await using tunnel = await cloudflareQuickTunnel(
      options({
        CLOUDFLARED_DOUBLE_MODE: mode,
        CLOUDFLARED_DOUBLE_HOSTNAME: 'quiet-maple.trycloudflare.com',
        CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '300',
      }),
    ).open(targetFor(origin))
    expect(tunnel.url).toBe('https://quiet-maple.trycloudflare.com')
    expect(tunnel.recentOutput().some((l) => l.includes('Registered tunnel connection'))).toBe(false)
    expect(tunnel.recentOutput().some((l) => l.includes('quiet-maple'))).toBe(!mode.includes('hide-url'))
    expect((await fetch(`${tunnel.metricsUrl}/ready`)).status).toBe(200)
  })

  it.each([
    { signal: 'SIGTERM' as const, status: { code: 0, signal: null } },
    { signal: 'SIGKILL' as const, status: { code: null, signal: 'SIGKILL' } },
  ])('killAllTrackedChildren($signal) stops every tunnel synchronously', async ({ signal, status }) => {
    await using origin = await startOrigin()
    const backend = cloudflareQuickTunnel(options({ CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50' }))
    const tunnels = [await backend.open(targetFor(origin)), await backend.open(targetFor(origin))]
    onTestFinished(() => Promise.all(tunnels.map((t) => t.close())).then(() => undefined))
    expect(killAllTrackedChildren(signal)).toBe(2)
    await Promise.all(tunnels.map((t) => t.closed))
    for (const t of tunnels) {
      expect(isAlive(t.pid)).toBe(false)
      expect(t.exitStatus).toEqual(status)
    }
    expect(trackedChildCount()).toBe(0)
    expect(killAllTrackedChildren()).toBe(0)
  })
})
