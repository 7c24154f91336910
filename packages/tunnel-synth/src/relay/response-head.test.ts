import { Agent, request } from 'undici'
import { expect, onTestFinished, test } from 'vitest'
import { attachRawAgent } from '../fixtures/raw-peers'
import { createRelayServer } from './index'
import { responseHead } from './response-head'

test('headers Node would refuse are refused before writeHead', () => {
  expect(responseHead([['x a', '1']], false)).toMatch(/header name that is not a token/)
  expect(responseHead([['x\u0000a', '1']], false)).toMatch(/header name that is not a token/)
  expect(responseHead([['x-a', 'v\r\nx-b: 2']], false)).toMatch(/characters a header cannot carry/)
  expect(responseHead([['x-a', 'tab\tand ütf']], false)).toEqual({
    headers: ['x-a', 'tab\tand ütf'],
    contentLength: undefined,
  })
})

// Before: writeHead(204, [bad]) threw half way, the 502 that followed kept 204's "no body" and the
// caller waited for a body that never came.
test.each([204, 200])(
  'a bad header name in a %i RESP_HEADERS → 502 problem, not a hung caller',
  async (status) => {
    await using relay = await createRelayServer({ apiKeys: ['k'] })
    const agent = await attachRawAgent(relay.url, 'k')
    const dispatcher = new Agent()
    onTestFinished(() => dispatcher.close())
    const pending = request(`${agent.lease.public_url}/x`, {
      headers: { 'x-synthtunnel-worker-token': agent.lease.worker_token },
      dispatcher,
    })
    const head = await agent.request()
    agent.send(head.rid, { type: 'RESP_HEADERS', status, headers: [['x a', '0']] })
    const res = await pending
    expect(res.statusCode).toBe(502)
    expect(await res.body.json()).toMatchObject({ code: 'TUNNEL_BAD_AGENT_RESPONSE' })
  },
)
