import { describe, expect, onTestFinished, test, vi } from 'vitest'
import { createTaskApp } from './index'
import type { RolloutContext, TaskAppConfig } from './index'
import { deferred, listenLoopback } from '@taskapp/test-utils'
import { AUTH, KEY, rolloutBody, startFakeVendor, testConfig } from './test-helpers'

async function serve(overrides: Partial<TaskAppConfig> = {}) {
  const app = createTaskApp(testConfig(overrides))
  const listening = await listenLoopback(app)
  onTestFinished(async () => {
    await listening.close()
    await app.lifecycle.close({ graceMs: 500 }).catch(() => {})
  })
  return { app, url: listening.url, listening }
}

const json = { 'content-type': 'application/json' }

async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { detail: { error: { code: string } } }
  return body.detail.error.code
}

describe('over a real socket (127.0.0.1, port 0)', () => {
  test('app.listen works too: health, info, task_info, rollout', async () => {
    const app = createTaskApp(testConfig())
    const server = app.listen(0, '127.0.0.1')
    onTestFinished(async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await app.lifecycle.close()
    })
    await new Promise<void>((resolve) => server.once('listening', () => resolve()))
    const { port } = server.address() as { port: number }
    const base = `http://127.0.0.1:${port}`
    const headers = { authorization: `Bearer ${KEY}` }
    expect(await (await fetch(`${base}/health`, { headers })).json()).toMatchObject({ healthy: true })
    expect((await fetch(`${base}/info`, { headers })).status).toBe(200)
    expect(await (await fetch(`${base}/task_info?seed=2`, { headers })).json()).toMatchObject({
      task_metadata: { seed: 2 },
    })
    const res = await fetch(`${base}/rollout`, {
      method: 'POST',
      headers: { ...headers, ...json },
      body: JSON.stringify(rolloutBody()),
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({
      trace_correlation_id: 'trace-1',
      reward_info: { outcome_reward: 1 },
    })
    const head = await fetch(`${base}/`, { method: 'HEAD' })
    expect(head.status).toBe(200)
  })

  test('async: 202 + Location, then poll the Location until succeeded', async () => {
    const release = deferred<void>()
    const { url } = await serve({
      rollout: async (r) => {
        await release.promise
        return { trace_correlation_id: r.trace_correlation_id, reward_info: { outcome_reward: 0.3 } }
      },
    })
    const res = await fetch(`${url}/rollout`, {
      method: 'POST',
      headers: { ...AUTH, ...json, prefer: 'respond-async' },
      body: JSON.stringify(rolloutBody()),
    })
    expect(res.status).toBe(202)
    const location = res.headers.get('location')!
    release.resolve()
    const done = await vi.waitFor(
      async () => {
        const job = (await (await fetch(new URL(location, url), { headers: AUTH })).json()) as {
          status: string
          result: unknown
        }
        if (job.status !== 'succeeded') throw new Error(`job is still ${job.status}`)
        return job
      },
      { timeout: 10_000, interval: 10 },
    )
    expect(done.result).toMatchObject({ reward_info: { outcome_reward: 0.3 } })
  })

  test('a client that hangs up aborts the rollout signal', async () => {
    const started = deferred<RolloutContext>()
    const { url } = await serve({
      rollout: async (r, ctx) => {
        started.resolve(ctx)
        await new Promise((_resolve, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
        )
        return { trace_correlation_id: r.trace_correlation_id, reward_info: { outcome_reward: 0 } }
      },
    })
    const client = new AbortController()
    const pending = fetch(`${url}/rollout`, {
      method: 'POST',
      headers: { ...AUTH, ...json },
      body: JSON.stringify(rolloutBody()),
      signal: client.signal,
    })
    pending.catch(() => {})
    const ctx = await started.promise
    client.abort()
    await expect.poll(() => ctx.signal.aborted, { timeout: 10_000 }).toBe(true)
    expect(ctx.signal.aborted).toBe(true)
  })

  test('a body over the limit: 413 in the envelope', async () => {
    const { url } = await serve({ limits: { bodyLimit: '1kb' } })
    const res = await fetch(`${url}/rollout`, {
      method: 'POST',
      headers: { ...AUTH, ...json },
      body: JSON.stringify(rolloutBody({ pad: 'x'.repeat(4096) })),
    })
    expect(res.status).toBe(413)
    expect(await errorCode(res)).toBe('payload_too_large')
  })

  test('graceful close with a sync rollout in flight: the caller gets 503 rollout_cancelled', async () => {
    const started = deferred<void>()
    const { app, url } = await serve({
      rollout: async (_r, ctx) => {
        started.resolve()
        await new Promise((_resolve, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
        )
        return { trace_correlation_id: 'x', reward_info: { outcome_reward: 0 } }
      },
    })
    const pending = fetch(`${url}/rollout`, {
      method: 'POST',
      headers: { ...AUTH, ...json },
      body: JSON.stringify(rolloutBody()),
    })
    await started.promise
    await app.lifecycle.close()
    const res = await pending
    expect(res.status).toBe(503)
    expect(await errorCode(res)).toBe('rollout_cancelled')
  })
})

describe('OpenAI-compatible proxy', () => {
  test('off unless configured', async () => {
    const { url } = await serve()
    const res = await fetch(`${url}/proxy/v1/chat/completions`, {
      method: 'POST',
      headers: { ...AUTH, ...json },
      body: '{}',
    })
    expect(res.status).toBe(404)
  })

  test('forwards the body with the server key and the system hint, returns the vendor JSON', async () => {
    await using vendor = await startFakeVendor(() => ({
      status: 200,
      body: { id: 'cmpl-1', choices: [{ message: { role: 'assistant', content: 'hi' } }] },
    }))
    const { url } = await serve({
      proxy: {
        openaiUrl: `${vendor.url}/v1/chat/completions`,
        apiKey: 'sk-vendor-1',
        systemHint: 'Answer with one intent.',
      },
    })
    const res = await fetch(`${url}/proxy/v1/chat/completions`, {
      method: 'POST',
      headers: { ...AUTH, ...json },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'card lost' }] }),
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({
      id: 'cmpl-1',
      choices: [{ message: { role: 'assistant', content: 'hi' } }],
    })
    expect(vendor.calls).toHaveLength(1)
    expect(vendor.calls[0]?.headers.authorization).toBe('Bearer sk-vendor-1')
    expect(vendor.calls[0]?.headers['x-api-key']).toBeUndefined() // the task-app key never goes to the vendor
    expect(vendor.calls[0]?.body).toEqual({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Answer with one intent.' },
        { role: 'user', content: 'card lost' },
      ],
    })
  })

  test('a vendor error keeps its status: vendor_error with the vendor body', async () => {
    await using vendor = await startFakeVendor(() => ({
      status: 429,
      body: { error: { message: 'rate limited' } },
    }))
    const { url } = await serve({
      proxy: { openaiUrl: `${vendor.url}/v1/chat/completions`, apiKey: 'sk-vendor-1' },
    })
    const res = await fetch(`${url}/proxy/v1/chat/completions`, {
      method: 'POST',
      headers: { ...AUTH, ...json },
      body: '{"messages":[]}',
    })
    expect(res.status).toBe(429)
    expect(await res.json()).toEqual({
      detail: {
        error: {
          code: 'vendor_error',
          message: 'Vendor proxy error',
          status: 429,
          body: { error: { message: 'rate limited' } },
        },
      },
    })
  })

  test('no vendor key: 503 missing_openai_api_key; vendor down: 502 vendor_unreachable', async () => {
    const saved = process.env.OPENAI_API_KEY
    delete process.env.OPENAI_API_KEY
    onTestFinished(() => {
      if (saved !== undefined) process.env.OPENAI_API_KEY = saved
    })
    const noKey = await serve({ proxy: { openaiUrl: 'http://127.0.0.1:9/v1/chat/completions' } })
    const r1 = await fetch(`${noKey.url}/proxy/v1/chat/completions`, {
      method: 'POST',
      headers: { ...AUTH, ...json },
      body: '{}',
    })
    expect(r1.status).toBe(503)
    expect(await errorCode(r1)).toBe('missing_openai_api_key')

    const vendor = await startFakeVendor(() => ({ status: 200, body: {} }))
    const deadUrl = vendor.url
    await vendor.close()
    const down = await serve({ proxy: { openaiUrl: `${deadUrl}/v1/chat/completions`, apiKey: 'k' } })
    const r2 = await fetch(`${down.url}/proxy/v1/chat/completions`, {
      method: 'POST',
      headers: { ...AUTH, ...json },
      body: '{}',
    })
    expect(r2.status).toBe(502)
    expect(await errorCode(r2)).toBe('vendor_unreachable')
  })

  test('the proxy needs the task-app key', async () => {
    const { url } = await serve({ proxy: { openaiUrl: 'http://127.0.0.1:9/x', apiKey: 'k' } })
    const res = await fetch(`${url}/proxy/v1/chat/completions`, { method: 'POST', headers: json, body: '{}' })
    expect(res.status).toBe(400)
  })
})
