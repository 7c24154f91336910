import { spawn } from 'node:child_process'
import type { ServerResponse } from 'node:http'
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { HealthCheckError, checkHealth, waitForHealthy, watchHealth } from './index'
import { deferred } from '@taskapp/test-utils'
import { json, startServer } from './test-helpers'

async function closedPortUrl(): Promise<string> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as AddressInfo
  await new Promise<void>((r) => s.close(() => r()))
  return `http://127.0.0.1:${port}/health`
}

describe('waitForHealthy', () => {
  it('resolves on the first healthy answer, sending the key in both headers', async () => {
    await using srv = await startServer((_req, res) => json(res, 200, { healthy: true }))
    const result = await waitForHealthy(srv.url, { apiKey: 'sk-test' })
    expect(result).toMatchObject({ attempts: 1, status: 200 })
    expect(result.elapsedMs).toBeGreaterThan(0)
    expect(srv.requests[0]!.headers['x-api-key']).toBe('sk-test')
    expect(srv.requests[0]!.headers.authorization).toBe('Bearer sk-test')
  })

  it('keeps polling a server that becomes healthy after N requests', async () => {
    await using srv = await startServer((_req, res, i) =>
      i < 4 ? json(res, 503, { healthy: false }) : json(res, 200, { healthy: true }),
    )
    const result = await waitForHealthy(srv.url, { timeoutMs: 10_000 })
    expect(result.attempts).toBe(5)
    expect(srv.requests).toHaveLength(5)
  })

  it('retries a 500 and then accepts the 200', async () => {
    await using srv = await startServer((_req, res, i) => (i === 0 ? json(res, 500, {}) : res.end('ok')))
    expect(await waitForHealthy(srv.url)).toMatchObject({ attempts: 2, status: 200 })
  })

  it('does not take a 2xx with healthy:false for healthy', async () => {
    await using srv = await startServer((_req, res, i) => json(res, 200, { healthy: i >= 2 }))
    expect((await waitForHealthy(srv.url)).attempts).toBe(3)
  })

  it('retries connection resets until the server answers', async () => {
    let resets = 0
    await using srv = await startServer((_req, res) => json(res, 200, { healthy: true }))
    // the first three connections are reset before any answer
    srv.server.prependListener('connection', (socket: Socket) => {
      if (resets < 3) {
        resets++
        socket.destroy()
      }
    })
    const result = await waitForHealthy(srv.url, { timeoutMs: 10_000 })
    expect(resets).toBe(3)
    expect(result.attempts).toBe(4)
  })

  it('a server that accepts TCP before its app is mounted is not healthy until the app answers', async () => {
    const mounted: { app?: (res: ServerResponse) => void } = {}
    const seenBeforeMount = deferred()
    let beforeMount = 0
    await using srv = await startServer((_req, res) => {
      if (mounted.app) return mounted.app(res)
      beforeMount++
      if (beforeMount === 3) seenBeforeMount.resolve()
      // no handler yet: the request hangs, as on a server that accepts before it is ready
    })
    const waiting = waitForHealthy(srv.url, { requestTimeoutMs: 50, timeoutMs: 10_000 })
    await seenBeforeMount.promise
    const mountedAt = performance.now()
    mounted.app = (res) => json(res, 200, { healthy: true })
    const result = await waiting
    const resolvedAt = performance.now()
    expect(resolvedAt).toBeGreaterThanOrEqual(mountedAt)
    expect(result.attempts).toBeGreaterThan(3)
  })

  it.each([
    [401, { detail: 'no' }],
    [403, {}],
    [400, { detail: { error: { code: 'unauthorised', message: 'Invalid API key' } } }],
  ])('fails fast with TASKAPP_ERR_HEALTH_UNAUTHORIZED on %i', async (status, body) => {
    await using srv = await startServer((_req, res) => json(res, status, body))
    const err = (await waitForHealthy(srv.url, { apiKey: 'sk-secret-123', timeoutMs: 10_000 }).catch(
      (e) => e,
    )) as HealthCheckError
    expect(err).toBeInstanceOf(HealthCheckError)
    expect(err.code).toBe('TASKAPP_ERR_HEALTH_UNAUTHORIZED')
    expect(err.attempts).toBe(1)
    expect(err.message).not.toContain('sk-secret-123')
    expect(srv.requests).toHaveLength(1)
  })

  it('a plain 400 without the auth code is retried, not taken for an auth failure', async () => {
    await using srv = await startServer((_req, res, i) =>
      i === 0 ? json(res, 400, { detail: 'bad' }) : res.end(),
    )
    expect((await waitForHealthy(srv.url)).attempts).toBe(2)
  })

  it('times out with the last status, a trimmed body, the causes and how to raise the deadline', async () => {
    const long = 'x'.repeat(1000)
    await using srv = await startServer((_req, res) => json(res, 503, { healthy: false, detail: long }))
    const err = (await waitForHealthy(srv.url, { timeoutMs: 150 }).catch((e) => e)) as HealthCheckError
    expect(err.code).toBe('TASKAPP_ERR_HEALTH_TIMEOUT')
    expect(err.last?.status).toBe(503)
    expect(err.last?.body?.length).toBeLessThanOrEqual(201)
    expect(err.attempts).toBeGreaterThan(1)
    expect(err.message).toContain('150 ms')
    expect(err.timeoutMs).toBe(150) // the deadline as data, for callers that word it their own way
    expect(err.message).toContain('/health route')
    expect(err.message).toContain('X-API-Key')
    expect(err.message).toContain('crashed')
    expect(err.message).toContain('timeoutMs')
  })

  it('times out with the last connection error when nothing listens', async () => {
    const err = (await waitForHealthy(await closedPortUrl(), { timeoutMs: 100 }).catch(
      (e) => e,
    )) as HealthCheckError
    expect(err.code).toBe('TASKAPP_ERR_HEALTH_TIMEOUT')
    expect(err.last?.status).toBeUndefined()
    expect(err.last?.error).toMatch(/ECONNREFUSED/)
    expect(err.attempts).toBeGreaterThan(1)
  })

  it('an abort rejects with signal.reason at once', async () => {
    await using srv = await startServer((_req, res) => json(res, 503, {}))
    const controller = new AbortController()
    const reason = new Error('user gave up')
    const waiting = waitForHealthy(srv.url, { signal: controller.signal, timeoutMs: 60_000 })
    const started = performance.now()
    // abort once the checker has certainly probed
    await new Promise<void>((resolve) => srv.server.once('request', () => resolve()))
    controller.abort(reason)
    await expect(waiting).rejects.toBe(reason)
    expect(performance.now() - started).toBeLessThan(5000)
  })

  it('an already-aborted signal rejects before any request', async () => {
    await using srv = await startServer((_req, res) => res.end())
    const reason = new Error('already')
    await expect(waitForHealthy(srv.url, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    expect(srv.requests).toHaveLength(0)
  })

  it.each([
    ['not a URL', 'TASKAPP_ERR_INVALID_URL', () => waitForHealthy('nope')],
    ['ftp URL', 'TASKAPP_ERR_INVALID_URL', () => waitForHealthy('ftp://127.0.0.1/health')],
    [
      'negative timeout',
      'TASKAPP_ERR_INVALID_OPTIONS',
      () => waitForHealthy('http://127.0.0.1:1/health', { timeoutMs: -1 }),
    ],
    ['checkHealth bad URL', 'TASKAPP_ERR_INVALID_URL', () => checkHealth('::')],
  ] as const)('%s → %s', async (_n, code, run) => {
    await expect(run()).rejects.toMatchObject({ name: 'HealthCheckError', code })
  })

  it('leaves no timer or socket behind: a process that used it exits by itself', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/exits-by-itself.ts', import.meta.url))
    const child = spawn(process.execPath, ['--conditions=@taskapp/source', '--import', 'tsx', fixture], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    const killer = AbortSignal.timeout(15_000)
    const onTimeout = () => child.kill('SIGKILL')
    killer.addEventListener('abort', onTimeout)
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
      child.once('exit', (c, s) => resolve([c, s])),
    )
    killer.removeEventListener('abort', onTimeout)
    expect(signal, `child was killed after 15 s: something kept it alive. Output: ${out}`).toBeNull()
    expect(code, out).toBe(0)
    expect(out).toContain('DONE 3')
  })
})

describe('checkHealth', () => {
  it('reports one probe without throwing', async () => {
    await using srv = await startServer((_req, res) => json(res, 503, { healthy: false }))
    const r = await checkHealth(srv.url)
    expect(r).toMatchObject({ healthy: false, unauthorized: false, status: 503 })
    const refused = await checkHealth(await closedPortUrl())
    expect(refused.healthy).toBe(false)
    expect(refused.error).toMatch(/ECONNREFUSED/)
  })

  it('honours a custom predicate and extra headers', async () => {
    await using srv = await startServer((_req, res) => json(res, 200, { status: 'ok' }))
    const r = await checkHealth(srv.url, {
      headers: { 'X-Extra': '1' },
      isHealthy: ({ json: body }) => (body as { status?: string }).status === 'ok',
    })
    expect(r.healthy).toBe(true)
    expect(srv.requests[0]!.headers['x-extra']).toBe('1')
  })

  it('counts a slow answer as a failed probe', async () => {
    const sockets: Socket[] = []
    await using srv = await startServer(() => undefined)
    srv.server.on('connection', (s) => sockets.push(s))
    const r = await checkHealth(srv.url, { requestTimeoutMs: 30 })
    expect(r.healthy).toBe(false)
    expect(r.error).toContain('no answer within 30 ms')
  })
})

describe('watchHealth', () => {
  it('calls onUnhealthy once after the threshold, and onRecovered when it comes back', async () => {
    let up = true
    await using srv = await startServer((_req, res) => json(res, up ? 200 : 503, { healthy: up }))
    const down = deferred<number>()
    const recovered = deferred<number>()
    let unhealthyCalls = 0
    await using watcher = watchHealth(srv.url, {
      intervalMs: 5,
      failureThreshold: 3,
      onUnhealthy: ({ consecutiveFailures }) => {
        unhealthyCalls++
        down.resolve(consecutiveFailures)
      },
      onRecovered: ({ consecutiveFailures }) => recovered.resolve(consecutiveFailures),
    })
    // wait for two healthy probes, then take the target down
    while (watcher.probes < 2) await new Promise<void>((r) => setImmediate(r))
    expect(watcher.healthy).toBe(true)
    up = false
    expect(await down.promise).toBe(3)
    expect(watcher.healthy).toBe(false)
    const failuresSoFar = watcher.consecutiveFailures
    while (watcher.consecutiveFailures < failuresSoFar + 2) await new Promise<void>((r) => setImmediate(r))
    expect(unhealthyCalls).toBe(1)
    up = true
    expect(await recovered.promise).toBeGreaterThanOrEqual(3)
    expect(watcher.healthy).toBe(true)
  })

  it('stops probing after close(), and close() is idempotent', async () => {
    await using srv = await startServer((_req, res) => res.end())
    const watcher = watchHealth(srv.url, { intervalMs: 5 })
    while (watcher.probes < 1) await new Promise<void>((r) => setImmediate(r))
    await Promise.all([watcher.close(), watcher.close()])
    const seen = srv.requests.length
    // a full event-loop turn that would have fired a 5 ms timer many times over
    await new Promise<void>((resolve) => setImmediate(resolve))
    expect(srv.requests.length).toBe(seen)
  })

  it('stops when its signal aborts', async () => {
    await using srv = await startServer((_req, res) => res.end())
    const controller = new AbortController()
    const watcher = watchHealth(srv.url, { intervalMs: 5, signal: controller.signal })
    while (watcher.probes < 1) await new Promise<void>((r) => setImmediate(r))
    controller.abort()
    await watcher.close()
    const seen = srv.requests.length
    await new Promise<void>((resolve) => setImmediate(resolve))
    expect(srv.requests.length).toBe(seen)
  })

  it('rejects bad options with TASKAPP_ERR_INVALID_OPTIONS', () => {
    expect(() => watchHealth('http://127.0.0.1:1/health', { intervalMs: 0 })).toThrow(
      expect.objectContaining({ code: 'TASKAPP_ERR_INVALID_OPTIONS' }),
    )
  })
})
