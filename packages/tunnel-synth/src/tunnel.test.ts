import { Readable } from 'node:stream'
import { createHash, randomBytes } from 'node:crypto'
import { Agent, request } from 'undici'
import { describe, expect, onTestFinished, test } from 'vitest'
import { deferred } from '@taskapp/test-utils'
import { readBody, startStack } from './test-helpers'

function client() {
  const dispatcher = new Agent({ connections: 256 })
  onTestFinished(() => dispatcher.close())
  return dispatcher
}

describe('round trip through relay + agent', () => {
  test('method, path, query, headers and body arrive; status, headers and body come back', async () => {
    let seen: { method?: string; url?: string; headers: Record<string, unknown>; body: string } | undefined
    await using stack = await startStack(async (req, res) => {
      seen = {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: (await readBody(req)).toString(),
      }
      res.setHeader('set-cookie', ['a=1', 'b=2'])
      res.setHeader('x-reply', 'yes')
      res.writeHead(201, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: true }))
    })
    const { tunnel } = stack
    expect(tunnel.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/s\/rt_[A-Za-z0-9_-]{20,}$/)
    expect(tunnel.headers).toEqual({ 'X-SynthTunnel-Worker-Token': tunnel.workerToken })
    const res = await request(`${tunnel.url}/probe/a%20b?seed=1&seed=2&x=%2F`, {
      method: 'POST',
      headers: {
        ...tunnel.headers,
        'x-custom': 'v1',
        'content-type': 'text/plain',
        connection: 'keep-alive',
      },
      body: 'hello relay',
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(201)
    expect(res.headers['x-reply']).toBe('yes')
    // the relay's origin is shared by every tunnel: Set-Cookie stops there unless allowSetCookie
    expect(res.headers['set-cookie']).toBeUndefined()
    expect(await res.body.json()).toEqual({ ok: true })
    expect(seen?.method).toBe('POST')
    expect(seen?.url).toBe('/probe/a%20b?seed=1&seed=2&x=%2F')
    expect(seen?.body).toBe('hello relay')
    expect(seen?.headers['x-custom']).toBe('v1')
    expect(seen?.headers['content-type']).toBe('text/plain')
    // the worker token never reaches the local server; the reference's tracing headers do
    expect(seen?.headers['x-synthtunnel-worker-token']).toBeUndefined()
    expect(seen?.headers.authorization).toBeUndefined()
    expect(seen?.headers['x-synthtunnel-lease-id']).toBe(tunnel.leaseId)
    expect(seen?.headers['x-synthtunnel-request-id']).toMatch(/^r\d+$/)
    expect(seen?.headers['x-forwarded-proto']).toBe('https')
  })

  test('Authorization: Bearer <worker token> is accepted and stripped; local API keys are injected', async () => {
    let headers: Record<string, unknown> = {}
    await using stack = await startStack(
      (req, res) => {
        headers = req.headers
        res.end('ok')
      },
      { agent: { localApiKeys: ['env-key-1', 'env-key-2'] } },
    )
    const res = await request(`${stack.tunnel.url}/health`, {
      headers: { authorization: `Bearer ${stack.tunnel.workerToken}`, 'x-api-key': 'caller-chosen' },
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(200)
    expect(await res.body.text()).toBe('ok')
    expect(headers['x-api-key']).toBe('env-key-1')
    expect(headers['x-api-keys']).toBe('env-key-1,env-key-2')
    expect(headers.authorization).toBe('Bearer env-key-1')
  })

  test('the agent marks every forwarded request x-synth-relay: 1; a caller-sent marker never reaches the local server', async () => {
    const seen: unknown[] = []
    await using stack = await startStack((req, res) => {
      seen.push(req.headers['x-synth-relay'])
      res.end('ok')
    })
    for (const headers of [
      { ...stack.tunnel.headers },
      { ...stack.tunnel.headers, 'x-synth-relay': '0' },
      { ...stack.tunnel.headers, 'X-Synth-Relay': 'forged' },
    ]) {
      const res = await request(`${stack.tunnel.url}/marker`, { headers, dispatcher: client() })
      expect(res.statusCode).toBe(200)
      await res.body.text()
    }
    expect(seen).toEqual(['1', '1', '1'])
  })

  test("injectApiKey: false → the agent injects no key; the caller's own X-API-Key and container token pass, Authorization does not", async () => {
    let headers: Record<string, unknown> = {}
    await using stack = await startStack(
      (req, res) => {
        headers = req.headers
        res.end('ok')
      },
      { agent: { localApiKeys: ['env-key-1', 'env-key-2'], injectApiKey: false } },
    )
    const bare = await request(`${stack.tunnel.url}/health`, {
      headers: { authorization: `Bearer ${stack.tunnel.workerToken}` },
      dispatcher: client(),
    })
    expect(bare.statusCode).toBe(200)
    await bare.body.text()
    expect(headers['x-api-key']).toBeUndefined()
    expect(headers['x-api-keys']).toBeUndefined()
    expect(headers.authorization).toBeUndefined()
    expect(headers['x-synth-relay']).toBe('1')
    const own = await request(`${stack.tunnel.url}/health`, {
      headers: {
        ...stack.tunnel.headers,
        authorization: 'Bearer caller-bearer',
        'x-api-key': 'caller-key',
        'x-synth-container-authorization': 'Bearer v4.public.caller-token',
      },
      dispatcher: client(),
    })
    expect(own.statusCode).toBe(200)
    await own.body.text()
    expect(headers['x-api-key']).toBe('caller-key')
    expect(headers['x-synth-container-authorization']).toBe('Bearer v4.public.caller-token')
    expect(headers.authorization).toBeUndefined()
  })

  test('GET on the bare public URL reaches "/"', async () => {
    let url: string | undefined
    await using stack = await startStack((req, res) => {
      url = req.url
      res.end('root')
    })
    const res = await request(stack.tunnel.url, { headers: stack.tunnel.headers, dispatcher: client() })
    expect(await res.body.text()).toBe('root')
    expect(url).toBe('/')
  })

  test('200 concurrent requests with distinct bodies are all answered correctly (default limits)', async () => {
    await using stack = await startStack(async (req, res) => {
      const body = await readBody(req)
      res.setHeader('x-id', String(req.headers['x-id']))
      res.end(createHash('sha256').update(body).digest('hex'))
    })
    // 128 client connections = the relay's default in-flight limit; the other 72 queue client-side
    const dispatcher = new Agent({ connections: 128 })
    onTestFinished(() => dispatcher.close())
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const body = randomBytes(1_000 + i * 97)
        const res = await request(`${stack.tunnel.url}/echo-hash?i=${i}`, {
          method: 'POST',
          headers: { ...stack.tunnel.headers, 'x-id': String(i) },
          body,
          dispatcher,
        })
        const text = await res.body.text()
        return {
          status: res.statusCode,
          id: res.headers['x-id'],
          ok: text === createHash('sha256').update(body).digest('hex'),
        }
      }),
    )
    results.forEach((r, i) => expect(r).toEqual({ status: 200, id: String(i), ok: true }))
  })

  test('200 concurrent requests under maxInflight 256 all succeed', async () => {
    await using stack = await startStack(
      async (req, res) => {
        const body = await readBody(req)
        res.end(createHash('sha256').update(body).digest('hex'))
      },
      { relay: { maxInflight: 256 }, agent: { maxInflight: 256 } },
    )
    const dispatcher = client()
    const oks = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const body = Buffer.from(`body-${i}-${randomBytes(8).toString('hex')}`.repeat(i + 1))
        const res = await request(`${stack.tunnel.url}/h`, {
          method: 'PUT',
          headers: stack.tunnel.headers,
          body,
          dispatcher,
        })
        return (
          res.statusCode === 200 &&
          (await res.body.text()) === createHash('sha256').update(body).digest('hex')
        )
      }),
    )
    expect(oks.every(Boolean)).toBe(true)
  })

  test('a caller that aborts reaches the local handler as an aborted request (CANCEL)', async () => {
    const handlerAborted = deferred()
    const handlerStarted = deferred()
    await using stack = await startStack((req, res) => {
      handlerStarted.resolve()
      res.on('close', () => {
        if (!res.writableFinished) handlerAborted.resolve()
      })
    })
    const controller = new AbortController()
    const pending = request(`${stack.tunnel.url}/slow`, {
      headers: stack.tunnel.headers,
      signal: controller.signal,
      dispatcher: client(),
    })
    await handlerStarted.promise
    expect(stack.relay.stats().inflight).toBe(1)
    controller.abort()
    await expect(pending).rejects.toThrow()
    await handlerAborted.promise
    await expect
      .poll(() => stack.relay.stats().inflight, {
        timeout: 5_000,
        interval: 5,
        message: 'relay in-flight back to 0',
      })
      .toBe(0)
  })

  test('responses stream back as they are produced (first bytes before the handler ends)', async () => {
    const release = deferred()
    await using stack = await startStack(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first;')
      await release.promise
      res.end('second')
    })
    const res = await request(`${stack.tunnel.url}/stream`, {
      headers: stack.tunnel.headers,
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(200)
    const it = res.body[Symbol.asyncIterator]()
    const first = (await it.next()).value as Buffer
    expect(first.toString()).toBe('first;')
    release.resolve()
    let rest = ''
    for (let r = await it.next(); !r.done; r = await it.next()) rest += (r.value as Buffer).toString()
    expect(rest).toBe('second')
  })
})

describe('binary body frames (negotiated extension)', () => {
  test.each([
    ['both offer', true, true, true],
    ['agent does not offer', false, true, false],
    ['relay does not accept', true, false, false],
  ])(
    '%s → binary=%s/%s, and bodies round-trip either way',
    async (_name, agentBinary, relayBinary, expected) => {
      const infos: { obj: Record<string, unknown>; msg?: string }[] = []
      const logger = {
        debug() {},
        warn() {},
        error() {},
        info: (obj: object, msg?: string) =>
          void infos.push({ obj: obj as Record<string, unknown>, ...(msg ? { msg } : {}) }),
      }
      await using stack = await startStack(
        async (req, res) => {
          const body = await readBody(req)
          res.end(Buffer.concat([body, body]))
        },
        { relay: { binaryFrames: relayBinary, logger }, agent: { binaryFrames: agentBinary } },
      )
      expect(infos.find((i) => i.msg === 'relay: agent attached')?.obj.binary).toBe(expected)
      const body = randomBytes(300_000)
      const res = await request(`${stack.tunnel.url}/twice`, {
        method: 'POST',
        headers: stack.tunnel.headers,
        body,
        dispatcher: client(),
      })
      expect(Buffer.from(await res.body.arrayBuffer()).equals(Buffer.concat([body, body]))).toBe(true)
    },
  )
})

test('many concurrent, partly sent uploads all complete through a small agent buffer', async () => {
  await using stack = await startStack(
    async (req, res) => {
      const body = await readBody(req)
      res.end(createHash('sha256').update(body).digest('hex'))
    },
    { agent: { maxBufferedBytes: 256 * 1024, stallTimeoutMs: 60_000 } },
  )
  const dispatcher = client()
  // every upload sends 100 KB, then waits until all 64 have: 6.4 MB of unfinished small bodies at the agent
  const firstParts = deferred()
  let sentFirst = 0
  const oks = await Promise.all(
    Array.from({ length: 64 }, async () => {
      const body = randomBytes(200_000)
      async function* parts() {
        yield body.subarray(0, 100_000)
        if (++sentFirst === 64) firstParts.resolve()
        await firstParts.promise
        yield body.subarray(100_000)
      }
      const res = await request(`${stack.tunnel.url}/u`, {
        method: 'POST',
        headers: stack.tunnel.headers,
        body: Readable.from(parts()),
        dispatcher,
      })
      return (await res.body.text()) === createHash('sha256').update(body).digest('hex')
    }),
  )
  expect(oks.every(Boolean)).toBe(true)
})
