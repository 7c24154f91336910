/**
 * The in-process path (the target carries the app's `http.Server`: requests reach it in memory,
 * as request/response pairs or over in-memory connections) against the socket path (loopback TCP
 * to `localUrl`): the same cases through all three, on a real relay and a real local server on
 * 127.0.0.1.
 */
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { Agent, request } from 'undici'
import { describe, expect, onTestFinished, test } from 'vitest'
import { deferred } from '@taskapp/test-utils'
import { requestPairsSupported } from './agent/in-memory-request'
import { RELAY_MARKER_HEADER } from './protocol/frames'
import { readBody, startStack, within } from './test-helpers'

function client() {
  const dispatcher = new Agent({ connections: 8 })
  onTestFinished(() => dispatcher.close())
  return dispatcher
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const MB = 1024 * 1024

/** Resolves when `req` closes before its body was complete (the caller's abort reached the app). */
function abortedSeen(req: IncomingMessage): Promise<boolean> {
  return new Promise((resolve) => req.once('close', () => resolve(!req.complete)))
}

test('this Node has the node:http internals the request mode relies on (else the agent falls back to connections)', () => {
  // fails on a Node upgrade that removes one, so the fallback can never be taken silently here
  expect(requestPairsSupported()).toBe(true)
})

describe.each(['socket', 'request', 'connection'] as const)('the %s path', (path) => {
  test('a round trip: method, URL, headers, the relay marker, the remote address; the stats say which path', async () => {
    let seen: IncomingMessage | undefined
    let remote: { address?: string; port?: number } = {}
    await using stack = await startStack(
      async (req, res) => {
        seen = req
        remote = { address: req.socket.remoteAddress, port: req.socket.remotePort }
        const body = await readBody(req)
        res.writeHead(201, { 'x-app': 'yes', 'content-type': 'text/plain' })
        res.end(`${req.method} ${req.url} ${body.toString()}`)
      },
      { path },
    )
    const res = await request(`${stack.tunnel.url}/a/b?q=1`, {
      method: 'PUT',
      headers: { ...stack.tunnel.headers, 'x-custom': 'c' },
      body: 'hello',
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(201)
    expect(res.headers['x-app']).toBe('yes')
    expect(await res.body.text()).toBe('PUT /a/b?q=1 hello')
    expect(seen?.headers['x-custom']).toBe('c')
    expect(seen?.headers[RELAY_MARKER_HEADER]).toBe('1')
    expect(seen?.headers['x-synthtunnel-worker-token']).toBeUndefined()
    expect(remote.address).toBe('127.0.0.1')
    const relayPort = Number(new URL(stack.relay.url).port)
    const stats = stack.tunnel.stats()
    if (path === 'socket') {
      expect(remote.port).not.toBe(relayPort)
      expect(stats.inMemory).toBe(0)
    } else {
      // the relay's end of the agent's WebSocket, not a loopback connection of the agent
      expect(remote.port).toBe(relayPort)
      expect(stats.inMemory).toBeGreaterThan(0)
    }
  })

  test('an informational head, an app-forced chunked body with repeated headers, and HEAD', async () => {
    await using stack = await startStack(
      (req, res) => {
        res.writeEarlyHints({ link: '</a.css>; rel=preload' })
        res.setHeader('x-multi', ['a', 'b'])
        res.setHeader('transfer-encoding', 'chunked')
        res.writeHead(200, { 'content-type': 'text/plain' })
        if (req.method === 'HEAD') return void res.end()
        res.write('one,')
        res.write(Buffer.from('two,'))
        res.end('three')
      },
      { path },
    )
    const get = await request(`${stack.tunnel.url}/chunks`, {
      headers: stack.tunnel.headers,
      dispatcher: client(),
    })
    expect(get.statusCode).toBe(200)
    expect([get.headers['x-multi']].flat().join(', ')).toBe('a, b')
    expect(await get.body.text()).toBe('one,two,three')
    const head = await request(`${stack.tunnel.url}/chunks`, {
      method: 'HEAD',
      headers: stack.tunnel.headers,
      dispatcher: client(),
    })
    expect(head.statusCode).toBe(200)
    expect(await head.body.text()).toBe('')
  })

  test('8 MB streamed each way with backpressure: bounded agent buffers, the app sees write() return false', async () => {
    const upload = randomBytes(8 * MB)
    const download = randomBytes(8 * MB)
    let appSawBackpressure = false
    let uploadHash = ''
    await using stack = await startStack(
      async (req, res) => {
        uploadHash = sha(await readBody(req))
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        for (let at = 0; at < download.length; at += 64 * 1024) {
          if (!res.write(download.subarray(at, at + 64 * 1024))) {
            appSawBackpressure = true
            await once(res, 'drain')
          }
        }
        res.end()
      },
      { path, agent: { maxBufferedBytes: 2 * MB } },
    )
    const res = await request(`${stack.tunnel.url}/big`, {
      method: 'POST',
      headers: stack.tunnel.headers,
      body: Readable.from(
        (function* () {
          for (let at = 0; at < upload.length; at += 256 * 1024) yield upload.subarray(at, at + 256 * 1024)
        })(),
      ),
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(200)
    const chunks: Buffer[] = []
    for await (const c of res.body) chunks.push(c as Buffer)
    expect(sha(Buffer.concat(chunks))).toBe(sha(download))
    expect(uploadHash).toBe(sha(upload))
    expect(appSawBackpressure).toBe(true)
    const stats = stack.tunnel.stats()
    expect(stats.peakHeldRequestBytes).toBeLessThanOrEqual(2 * MB + 256 * 1024)
    expect(stats.peakQueuedResponseBytes).toBeLessThan(4 * MB)
  })

  test("a caller that aborts mid-body: the app's req sees aborted / close", async () => {
    const reached = deferred<IncomingMessage>()
    await using stack = await startStack(
      (req) => {
        req.once('data', () => reached.resolve(req))
      },
      { path },
    )
    const caller = new AbortController()
    const body = new Readable({ read() {} })
    body.push(Buffer.alloc(256 * 1024, 'a')) // past the agent's buffering: the body streams to the app
    const pending = request(`${stack.tunnel.url}/upload`, {
      method: 'POST',
      headers: stack.tunnel.headers,
      body,
      signal: caller.signal,
      dispatcher: client(),
    }).catch((err: unknown) => err)
    const req = await within(reached.promise, 5_000, 'the body reaching the app')
    const aborted = abortedSeen(req)
    caller.abort()
    expect(await within(aborted, 5_000, "the app's req closing")).toBe(true)
    await pending
  })

  test('an app that destroys the connection: the caller gets 502', async () => {
    await using stack = await startStack((req) => req.socket.destroy(), { path })
    const res = await request(`${stack.tunnel.url}/boom`, {
      headers: stack.tunnel.headers,
      dispatcher: client(),
    })
    await res.body.dump()
    expect(res.statusCode).toBe(502)
  })

  test("past the deadline: the caller gets 502 or 504 and the app's response is cut off", async () => {
    const reached = deferred<ServerResponse>()
    await using stack = await startStack((_req, res) => reached.resolve(res), {
      path,
      relay: { defaultDeadlineMs: 200 },
    })
    const pending = request(`${stack.tunnel.url}/slow`, {
      headers: stack.tunnel.headers,
      dispatcher: client(),
    })
    const appRes = await within(reached.promise, 5_000, 'the request reaching the app')
    const closed = once(appRes, 'close')
    const res = await pending
    await res.body.dump()
    expect([502, 504]).toContain(res.statusCode)
    await within(closed, 5_000, "the app's response closing")
    expect(appRes.writableEnded).toBe(false) // closed under the app, not answered
  })
})

test("'request' mode: a request listener that throws synchronously gives the caller 502", async () => {
  await using stack = await startStack(
    (req) => {
      if (req.url === '/throw') throw new Error('listener failed')
    },
    { path: 'request' },
  )
  const res = await request(`${stack.tunnel.url}/throw`, {
    headers: stack.tunnel.headers,
    dispatcher: client(),
  })
  await res.body.dump()
  expect(res.statusCode).toBe(502)
})

test('inProcess: false forces the socket path even when the target carries the server', async () => {
  await using stack = await startStack((_req, res) => res.end('ok'), {
    path: 'request',
    agent: { inProcess: false },
  })
  const res = await request(`${stack.tunnel.url}/`, { headers: stack.tunnel.headers, dispatcher: client() })
  expect(await res.body.text()).toBe('ok')
  expect(stack.tunnel.stats().inMemory).toBe(0)
})
