/**
 * What the relay and the agent forward, header by header, in both directions; `Expect:
 * 100-continue`; and the lease API's DELETE with an id that is not valid percent-encoding.
 */
import { request as httpRequest } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { describe, expect, onTestFinished, test, vi } from 'vitest'
import { deferred, recordingLogger } from '@taskapp/test-utils'
import { SynthTunnelErrorCode } from './errors'
import { attachRawAgent, rawCaller } from './fixtures/raw-peers'
import { startReferenceRelay } from './fixtures/reference-peers'
import { createRelayServer, relayOptionsFromEnv } from './relay/index'
import type { RelayServerOptions } from './relay/index'
import { synthTunnel } from './synth-tunnel'
import { readBody, startLocalServer, startStack, within } from './test-helpers'

/** Hop-by-hop by the caller's own declaration, and a client address a caller must not choose. */
const HOSTILE_REQUEST_HEADERS = {
  Connection: 'keep-alive, X-Secret-Hop',
  'X-Secret-Hop': 'v',
  'X-Real-IP': '6.6.6.6',
  'X-Kept': '1',
}

async function rawTunnel(options: RelayServerOptions = {}) {
  const relay = await createRelayServer({ apiKeys: ['k'], ...options })
  onTestFinished(() => relay.close())
  const agent = await attachRawAgent(relay.url, 'k')
  const caller = await rawCaller(relay.url)
  const path = new URL(agent.lease.public_url).pathname
  const headers = { 'X-SynthTunnel-Worker-Token': agent.lease.worker_token }
  return { relay, agent, caller, path, headers }
}

const names = (pairs: [string, string][]) => pairs.map(([n]) => n.toLowerCase())

describe('headers', () => {
  test("the relay drops headers the caller's Connection header names, X-Real-IP and Expect", async () => {
    const { agent, caller, path, headers } = await rawTunnel()
    caller.send(
      `${path}/hop`,
      { ...headers, ...HOSTILE_REQUEST_HEADERS, Expect: '100-continue' },
      'POST',
      'x',
    )
    const head = await agent.request(0)
    const forwarded = names(head.headers as [string, string][])
    expect(forwarded).toContain('x-kept')
    for (const h of ['x-secret-hop', 'x-real-ip', 'expect', 'connection'])
      expect(forwarded, h).not.toContain(h)
  })

  test('the agent drops them too (from a relay that forwards them), and what the local server names in Connection', async () => {
    const seen: IncomingHttpHeaders[] = []
    await using local = await startLocalServer((req, res) => {
      seen.push(req.headers)
      res.setHeader('Connection', 'X-Local-Hop')
      res.setHeader('X-Local-Hop', 'v')
      res.end('ok')
    })
    await using ref = await startReferenceRelay()
    await using _tunnel = await synthTunnel({ backendUrl: ref.url, apiKey: 'k', env: {} }).open(local.target)
    const res = await ref.request({
      method: 'POST',
      headers: [...Object.entries(HOSTILE_REQUEST_HEADERS), ['Expect', '100-continue']],
      body: Buffer.alloc(2048, 'x'),
    })
    expect(res.error).toBeUndefined()
    expect(res.status).toBe(200)
    expect(seen[0]?.['x-kept']).toBe('1')
    for (const h of ['x-secret-hop', 'x-real-ip', 'expect']) expect(seen[0]?.[h], h).toBeUndefined()
    expect(names(res.headers)).not.toContain('x-local-hop')
  })

  test("end to end, the local server never sees a Connection-named header or the caller's X-Real-IP", async () => {
    const seen: IncomingHttpHeaders[] = []
    await using stack = await startStack((req, res) => {
      seen.push(req.headers)
      res.end('ok')
    })
    const caller = await rawCaller(stack.relay.url)
    caller.send(`${new URL(stack.tunnel.url).pathname}/hop`, {
      ...stack.tunnel.headers,
      ...HOSTILE_REQUEST_HEADERS,
    })
    await vi.waitFor(() => expect(caller.text()).toMatch(/\r\n\r\nok$/), { timeout: 5_000, interval: 5 })
    expect(seen[0]?.['x-kept']).toBe('1')
    expect(seen[0]?.['x-secret-hop']).toBeUndefined()
    expect(seen[0]?.['x-real-ip']).toBeUndefined()
  })

  test("the relay drops response headers the agent's Connection header names", async () => {
    const { agent, caller, path, headers } = await rawTunnel()
    caller.send(`${path}/resp`, headers)
    const { rid } = (await agent.request(0)) as { rid: string }
    const respHeaders = [
      ['Connection', 'X-Hop-Resp'],
      ['X-Hop-Resp', 'v'],
      ['X-Kept', '1'],
      ['content-length', '2'],
    ]
    agent.send(rid, { type: 'RESP_HEADERS', status: 200, headers: respHeaders })
    agent.send(rid, { type: 'RESP_BODY', chunk_b64: Buffer.from('ok').toString('base64') })
    agent.send(rid, { type: 'RESP_END' })
    await vi.waitFor(() => expect(caller.text()).toMatch(/\r\n\r\nok$/), { timeout: 5_000, interval: 5 })
    expect(caller.text()).toMatch(/\r\nX-Kept: 1\r\n/)
    expect(caller.text()).not.toMatch(/x-hop-resp/i)
  })

  test.each([
    ['by default, Set-Cookie is dropped', {}, 0],
    ['with allowSetCookie: true, Set-Cookie is kept', { allowSetCookie: true }, 2],
  ] as const)('%s', async (_name, options, cookies) => {
    const { agent, caller, path, headers } = await rawTunnel(options)
    caller.send(`${path}/login`, headers)
    const { rid } = (await agent.request(0)) as { rid: string }
    const respHeaders = [
      ['Set-Cookie', 'session=tenant-a; Path=/'],
      ['set-cookie', 'other=1; Path=/s/rt_victim'],
      ['X-Kept', '1'],
    ]
    agent.send(rid, { type: 'RESP_HEADERS', status: 200, headers: respHeaders })
    agent.send(rid, { type: 'RESP_END' })
    await vi.waitFor(() => expect(caller.text()).toMatch(/\r\n0\r\n\r\n$/), { timeout: 5_000, interval: 5 })
    expect(caller.text()).toMatch(/\r\nX-Kept: 1\r\n/)
    expect(caller.text().match(/\r\nset-cookie:/gi)?.length ?? 0).toBe(cookies)
  })

  test('allowSetCookie is checked, and read from TASKAPP_RELAY_ALLOW_SET_COOKIE', async () => {
    await expect(createRelayServer({ allowSetCookie: 'yes' as unknown as boolean })).rejects.toMatchObject({
      code: SynthTunnelErrorCode.RelayInvalidOptions,
      message: expect.stringContaining('allowSetCookie') as unknown,
    })
    expect(relayOptionsFromEnv({ TASKAPP_RELAY_ALLOW_SET_COOKIE: 'true' }).allowSetCookie).toBe(true)
    expect(relayOptionsFromEnv({ TASKAPP_RELAY_ALLOW_SET_COOKIE: '0' }).allowSetCookie).toBe(false)
    expect(relayOptionsFromEnv({}).allowSetCookie).toBeUndefined()
    expect(() => relayOptionsFromEnv({ TASKAPP_RELAY_ALLOW_SET_COOKIE: 'maybe' })).toThrow(
      expect.objectContaining({
        code: SynthTunnelErrorCode.RelayInvalidOptions,
        message: expect.stringContaining('TASKAPP_RELAY_ALLOW_SET_COOKIE') as unknown,
      }),
    )
  })
})

test('Expect: 100-continue (curl sends it for bodies over 1 kB) works end to end', async () => {
  await using stack = await startStack(async (req, res) => {
    const body = await readBody(req)
    res.end(JSON.stringify({ bytes: body.length, expect: req.headers.expect ?? null }))
  })
  const body = Buffer.alloc(2048, 'x')
  const req = httpRequest(`${stack.tunnel.url}/upload`, {
    method: 'POST',
    agent: false,
    headers: { ...stack.tunnel.headers, expect: '100-continue', 'content-length': body.length },
  })
  const continued = deferred<void>()
  const response = deferred<IncomingMessage>()
  req.on('continue', () => {
    continued.resolve()
    req.end(body)
  })
  req.on('response', (r) => response.resolve(r))
  req.on('error', (err) => response.reject(err))
  req.flushHeaders()
  await within(continued.promise, 5_000, '100 Continue')
  const res = await within(response.promise, 5_000, 'the response')
  const text = (await readBody(res)).toString()
  expect(`${res.statusCode} ${text}`).toBe(`200 ${JSON.stringify({ bytes: 2048, expect: null })}`)
})

describe('lease API DELETE', () => {
  test('an id that is not valid percent-encoding: 401 without a key (checked first), 404 with one, no ERROR log', async () => {
    const logger = recordingLogger()
    await using relay = await createRelayServer({ apiKeys: ['k'], logger })
    const url = `${relay.url}/api/v1/synthtunnel/leases/%E0%A4%A`
    const anonymous = await fetch(url, { method: 'DELETE' })
    expect(anonymous.status).toBe(401)
    const owner = await fetch(url, { method: 'DELETE', headers: { authorization: 'Bearer k' } })
    expect(owner.status).toBe(404)
    expect(await owner.json()).toMatchObject({ error: { code: 'not_found' } })
    // a valid escape is still decoded
    const created = await fetch(`${relay.url}/api/v1/synthtunnel/leases`, {
      method: 'POST',
      headers: { authorization: 'Bearer k' },
      body: '{}',
    })
    const { lease_id: id } = (await created.json()) as { lease_id: string }
    const escaped = `${relay.url}/api/v1/synthtunnel/leases/${id.replace('_', '%5F')}`
    const deleted = await fetch(escaped, { method: 'DELETE', headers: { authorization: 'Bearer k' } })
    expect(deleted.status).toBe(204)
    expect(logger.records.filter((r) => r.level === 'error')).toEqual([])
  })
})
