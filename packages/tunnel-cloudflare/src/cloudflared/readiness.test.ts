import { createServer } from 'node:http'
import { describe, expect, it } from 'vitest'
import type { SupervisedExit } from '../supervised-process'
import { ReadinessWatch } from './readiness'
import type { WaitForReadyOptions } from './readiness'

// Lines as cloudflared prints them (reference/cloudflared.md, section 2).
const T = '2026-08-20T10:00:00Z'
const URL_ROW = `${T} INF |  https://lamp-orbit.trycloudflare.com                                                      |`
const REGISTERED = `${T} INF Registered tunnel connection connIndex=0 connection=c0 event=0 ip=198.41.200.13 location=bru01 protocol=quic`
const metricsLine = (address: string) => `${T} INF Starting metrics server on ${address}/metrics`

function options(over: Partial<WaitForReadyOptions> = {}): WaitForReadyOptions {
  return {
    exited: new Promise<SupervisedExit>(() => {}),
    timeoutMs: 10_000,
    signal: undefined,
    errors: {
      exited: (s) => new Error(`exited ${String(s.code)}`),
      rateLimited: () => new Error('rate limited'),
      timedOut: () => new Error('timed out'),
    },
    ...over,
  }
}

describe('ReadinessWatch', () => {
  it('is ready only with the URL, a registration and the metrics address, in whatever order they come', async () => {
    const watch = new ReadinessWatch()
    const waiting = watch.wait(options())
    watch.observe(URL_ROW)
    watch.observe(REGISTERED)
    // cloudflared logs the metrics line from another goroutine: it may come after the registration.
    expect(watch.ready).toBe(false)
    watch.observe(metricsLine('127.0.0.1:43121'))
    expect(await waiting).toEqual({ ok: true })
    expect(watch.progress).toMatchObject({
      url: 'https://lamp-orbit.trycloudflare.com',
      registered: true,
      metricsUrl: 'http://127.0.0.1:43121',
    })
  })

  it('keeps the first metrics address it saw', () => {
    const watch = new ReadinessWatch('https://app.example.com')
    watch.observe(metricsLine('127.0.0.1:40001'))
    watch.observe(metricsLine('127.0.0.1:40002'))
    expect(watch.progress.metricsUrl).toBe('http://127.0.0.1:40001')
  })

  it('learns the registration and URL from /ready and /quicktunnel once the metrics address is logged', async () => {
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(req.url === '/quicktunnel' ? '{"hostname":"quiet-maple.trycloudflare.com"}' : '{"status":200}')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    await using _ = { [Symbol.asyncDispose]: () => new Promise<void>((r) => server.close(() => r())) }
    const { port } = server.address() as { port: number }
    const watch = new ReadinessWatch()
    const waiting = watch.wait(options())
    watch.observe(metricsLine(`127.0.0.1:${port}`))
    expect(await waiting).toEqual({ ok: true })
    expect(watch.progress.url).toBe('https://quiet-maple.trycloudflare.com')
  })

  it.each([
    {
      what: 'a rate-limit line',
      act: (w: ReadinessWatch) =>
        w.observe(
          `${T} ERR Error unmarshaling QuickTunnel response: error code: 1015 error="invalid character 'e' looking for beginning of value" status_code="429 Too Many Requests"`,
        ),
      over: {},
      message: 'rate limited',
    },
    {
      what: 'an exit',
      act: () => {},
      over: { exited: Promise.resolve({ code: 1, signal: null }) },
      message: 'exited 1',
    },
    { what: 'the deadline', act: () => {}, over: { timeoutMs: 50 }, message: 'timed out' },
  ])('fails on $what', async ({ act, over, message }) => {
    const watch = new ReadinessWatch()
    const waiting = watch.wait(options(over))
    act(watch)
    const outcome = await waiting
    expect(outcome.ok).toBe(false)
    expect(!outcome.ok && (outcome.error as Error).message).toBe(message)
  })

  it("ends with the caller's signal.reason when aborted", async () => {
    const controller = new AbortController()
    const reason = new Error('user gave up')
    const watch = new ReadinessWatch()
    const waiting = watch.wait(options({ signal: controller.signal }))
    watch.observe(URL_ROW)
    controller.abort(reason)
    expect(await waiting).toEqual({ ok: false, error: reason })
  })
})
