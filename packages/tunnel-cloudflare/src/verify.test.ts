import { describe, expect, it } from 'vitest'
import { CloudflareTunnelError, verifyTunnel } from './index'
import { startOrigin } from './test-helpers'

describe('verifyTunnel (against 127.0.0.1 only)', () => {
  it('retries while the edge answers 530/502, then succeeds once the app answers', async () => {
    await using origin = await startOrigin((req, n) =>
      n <= 2 ? { status: n === 1 ? 530 : 502, body: 'tunnel not ready' } : undefined,
    )
    const result = await verifyTunnel(`${origin.url}/`, {
      headers: { 'x-api-key': 'secret' },
      intervalMs: 10,
    })
    expect(result).toMatchObject({ status: 200, attempts: 3 })
    expect(origin.requests.map((r) => r.url)).toEqual(['/health', '/health', '/health'])
    expect(origin.requests[2]?.headers['x-api-key']).toBe('secret')
  })

  it('counts an app answer like 401 or 404 as reached, and honours path and accept', async () => {
    await using origin = await startOrigin((req) => ({
      status: req.url === '/task_info' ? 404 : 401,
      body: 'no',
    }))
    expect((await verifyTunnel(origin.url, { intervalMs: 10 })).status).toBe(401)
    expect((await verifyTunnel(origin.url, { path: 'task_info', intervalMs: 10 })).status).toBe(404)
    const strict = await verifyTunnel(origin.url, {
      accept: (s) => s === 200,
      timeoutMs: 300,
      intervalMs: 10,
    }).catch((e: unknown) => e)
    expect(strict).toMatchObject({ code: 'TASKAPP_ERR_TUNNEL_VERIFY_FAILED' })
  })

  it('gives up with TASKAPP_ERR_TUNNEL_VERIFY_FAILED after timeoutMs, naming the last failure', async () => {
    const dead = await startOrigin()
    const url = dead.url
    await dead.close() // nothing listens on that port any more: connection refused
    const err = await verifyTunnel(url, { timeoutMs: 400, intervalMs: 20 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CloudflareTunnelError)
    expect((err as CloudflareTunnelError).code).toBe('TASKAPP_ERR_TUNNEL_VERIFY_FAILED')
    expect((err as Error).message).toMatch(/ECONNREFUSED/)
  })

  it('rejects with signal.reason when aborted', async () => {
    await using origin = await startOrigin(() => ({ status: 530, body: 'not yet' }))
    const controller = new AbortController()
    const reason = new Error('enough')
    const pending = verifyTunnel(origin.url, { signal: controller.signal, intervalMs: 10 })
    // Abort once the first request has been seen by the server.
    await expect.poll(() => origin.requests.length, { timeout: 10_000, interval: 10 }).toBeGreaterThan(0)
    controller.abort(reason)
    await expect(pending).rejects.toBe(reason)
    await expect(verifyTunnel(origin.url, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
  })

  it('rejects an invalid URL with TASKAPP_ERR_INVALID_OPTIONS', async () => {
    await expect(verifyTunnel('not a url')).rejects.toMatchObject({ code: 'TASKAPP_ERR_INVALID_OPTIONS' })
  })
})
