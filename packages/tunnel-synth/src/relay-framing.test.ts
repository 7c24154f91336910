/**
 * The relay owns the framing of what it sends callers: a hostile agent's Content-Length cannot
 * smuggle a second response onto a caller's keep-alive connection. Agents here are hand-driven
 * WebSockets, callers raw TCP sockets, so the tests see exactly the bytes that arrive.
 */
import { describe, expect, onTestFinished, test, vi } from 'vitest'
import { createRelayServer } from './relay/index'
import { attachRawAgent, rawCaller, statusLines } from './fixtures/raw-peers'
import type { RawAgent, RawCaller } from './fixtures/raw-peers'
import { within } from './test-helpers'

/** A complete response, as a naive client would take it, hidden after the declared body. */
const INJECTED = 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\nSet-Cookie: victim=1\r\n\r\ninject'

async function setup() {
  const relay = await createRelayServer({ apiKeys: ['k'] })
  onTestFinished(() => relay.close())
  const agent = await attachRawAgent(relay.url, 'k')
  const caller = await rawCaller(relay.url)
  const path = new URL(agent.lease.public_url).pathname
  const headers = { 'X-SynthTunnel-Worker-Token': agent.lease.worker_token }
  return { relay, agent, caller, path, headers }
}

/** Answer the `n`th request with these headers and body chunks, then RESP_END. */
async function answer(agent: RawAgent, n: number, headers: [string, string][], chunks: string[]) {
  const { rid } = (await agent.request(n)) as { rid: string }
  agent.send(rid, { type: 'RESP_HEADERS', status: 200, headers })
  for (const c of chunks) agent.send(rid, { type: 'RESP_BODY', chunk_b64: Buffer.from(c).toString('base64') })
  agent.send(rid, { type: 'RESP_END' })
}

const headComplete = (caller: RawCaller, count: number) =>
  vi.waitFor(() => expect(caller.text().split('\r\n\r\n').length).toBeGreaterThan(count), {
    timeout: 3_000,
    interval: 5,
  })

describe('a hostile agent cannot frame what the relay sends a caller', () => {
  test.each([
    ['in the same chunk as the declared body', ['hello' + INJECTED]],
    ['in a later chunk, after the declared body', ['hello', INJECTED]],
  ])(
    'bytes past Content-Length (%s) never reach the caller: its connection is destroyed',
    async (_name, chunks) => {
      const { relay, agent, caller, path, headers } = await setup()
      caller.send(`${path}/one`, headers)
      await answer(agent, 0, [['content-length', '5']], chunks)
      // the attack: the caller's next request on the keep-alive connection reads the fake response
      caller.send(`${path}/two`, headers)
      await within(caller.closed, 3_000, 'the caller connection closing')
      expect(caller.text()).not.toContain('inject')
      expect(statusLines(caller.text()).length).toBeLessThanOrEqual(1)
      await vi.waitFor(() => expect(relay.stats().inflight).toBe(0))
    },
  )

  const refused: [string, [string, string][], string[]][] = [
    [
      'two equal Content-Length headers',
      [
        ['content-length', '5'],
        ['Content-Length', '5'],
      ],
      ['hello'],
    ],
    [
      'two Content-Length headers that disagree',
      [
        ['content-length', '5'],
        ['content-length', String(5 + INJECTED.length)],
      ],
      ['hello', INJECTED],
    ],
    ['a comma list', [['content-length', '5, 5']], ['hello']],
    [
      'Content-Length 1e1 (Node reads 10, a lenient client 1)',
      [['content-length', '1e1']],
      ['h', 'elloworld'],
    ],
    ['Content-Length 5abc', [['content-length', '5abc']], ['hello']],
    ['a negative Content-Length', [['content-length', '-1']], ['hello']],
    [
      'Transfer-Encoding together with Content-Length',
      [
        ['transfer-encoding', 'chunked'],
        ['content-length', '5'],
      ],
      ['hello'],
    ],
  ]
  test.each(refused)(
    '%s: 502 TUNNEL_BAD_AGENT_RESPONSE, and the connection serves the next request cleanly',
    async (_name, respHeaders, chunks) => {
      const { agent, caller, path, headers } = await setup()
      caller.send(`${path}/one`, headers)
      await answer(agent, 0, respHeaders, chunks)
      await headComplete(caller, 1)
      expect(statusLines(caller.text())[0], caller.text()).toBe('HTTP/1.1 502 Bad Gateway')
      expect(caller.text()).toContain('TUNNEL_BAD_AGENT_RESPONSE')
      await vi.waitFor(() => expect(agent.frames.some((f) => f.type === 'CANCEL')).toBe(true))
      caller.send(`${path}/two`, headers)
      await answer(agent, 1, [['content-length', '6']], ['second'])
      await vi.waitFor(() => expect(caller.text()).toMatch(/second$/), { timeout: 3_000, interval: 5 })
      expect(statusLines(caller.text())).toEqual(['HTTP/1.1 502 Bad Gateway', 'HTTP/1.1 200 OK'])
      expect(caller.text()).not.toContain('inject')
    },
  )

  test('a well-framed response passes (a HEAD answer keeps its Content-Length and no body)', async () => {
    const { agent, caller, path, headers } = await setup()
    caller.send(`${path}/one`, headers)
    await answer(agent, 0, [['Content-Length', '05']], ['hel', 'lo'])
    await vi.waitFor(() => expect(caller.text()).toMatch(/hello$/), { timeout: 3_000, interval: 5 })
    expect(caller.text()).toMatch(/\r\ncontent-length: 5\r\n/i)
    caller.send(`${path}/head`, headers, 'HEAD')
    await answer(agent, 1, [['content-length', '1234']], [])
    await headComplete(caller, 2)
    caller.send(`${path}/three`, headers)
    await answer(agent, 2, [], ['chunked'])
    await vi.waitFor(() => expect(caller.text()).toMatch(/\r\n7\r\nchunked\r\n0\r\n\r\n$/), {
      timeout: 3_000,
      interval: 5,
    })
    expect(statusLines(caller.text())).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK'])
    expect(caller.text()).toMatch(/\r\ncontent-length: 1234\r\n/i)
    expect(caller.socket.destroyed).toBe(false)
  })
})
