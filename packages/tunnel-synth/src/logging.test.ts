/**
 * What the relay and the agent log when a tunneled request gets no answer (WARN on both sides),
 * and the agent's reconnect (INFO, with attempts and downtime). Real relay, agent and local
 * server on 127.0.0.1; the records come from `recordingLogger`.
 */
import { Agent, request } from 'undici'
import { describe, expect, onTestFinished, test } from 'vitest'
import { deferred, recordingLogger, type LogRecord } from '@taskapp/test-utils'
import { createMemoryLeaseStore, createRelayServer } from './relay/index'
import { synthTunnel } from './synth-tunnel'
import { startLocalServer, startStack } from './test-helpers'

function client() {
  const dispatcher = new Agent({ connections: 8 })
  onTestFinished(() => dispatcher.close())
  return dispatcher
}

const warns = (records: readonly LogRecord[], msg: RegExp) =>
  records.filter((r) => r.level === 'warn' && msg.test(r.msg ?? ''))

/** The route token of a tunnel URL (`.../s/<token>`). */
const routeOf = (url: string) => url.slice(url.lastIndexOf('/s/') + 3)

describe('a request that gets no answer is logged at WARN on both sides', () => {
  test('local server refused the connection: agent LOCAL_CONNECT_FAILED, relay 502 with route prefix and rid', async () => {
    const relayLog = recordingLogger()
    const agentLog = recordingLogger()
    await using stack = await startStack((_req, res) => res.end('ok'), {
      relay: { logger: relayLog },
      agent: { logger: agentLog },
    })
    await stack.local.close() // nothing listens on the local port any more
    const res = await request(`${stack.tunnel.url}/rollout?secret=sk-in-query`, {
      method: 'POST',
      headers: stack.tunnel.headers,
      body: '{}',
      dispatcher: client(),
    })
    expect(res.statusCode).toBe(502)
    await res.body.dump()
    const [agentWarn] = warns(agentLog.records, /could not serve a request/)
    expect(agentWarn?.obj).toMatchObject({
      method: 'POST',
      path: '/rollout',
      code: 'LOCAL_CONNECT_FAILED',
      reason: expect.stringMatching(/ECONNREFUSED|connect/i),
      rid: expect.any(String),
    })
    const [relayWarn] = warns(relayLog.records, /^relay: 502/)
    const route = routeOf(stack.tunnel.url)
    expect(relayWarn?.obj).toMatchObject({
      route: `${route.slice(0, 4)}…`,
      rid: agentWarn?.obj.rid,
      method: 'POST',
      status: 502,
      code: 'TUNNEL_UPSTREAM_ERROR',
      reason: expect.stringContaining('LOCAL_CONNECT_FAILED'),
    })
    // The relay shows route tokens as a prefix (the agent prints the public URL once, at INFO, on purpose).
    expect(JSON.stringify(relayLog.records)).not.toContain(route)
    expect(JSON.stringify([...relayLog.records, ...agentLog.records])).not.toContain('sk-in-query')
  })

  test('a response over maxResponseBytes: agent LOCAL_BAD_RESPONSE, relay logs the cut', async () => {
    const relayLog = recordingLogger()
    const agentLog = recordingLogger()
    await using stack = await startStack((_req, res) => res.end(Buffer.alloc(64 * 1024, 1)), {
      relay: { logger: relayLog },
      agent: { logger: agentLog, maxResponseBytes: 1024 },
    })
    // The head may have gone out already: then the caller's connection is reset instead of a 502.
    await request(`${stack.tunnel.url}/big`, { headers: stack.tunnel.headers, dispatcher: client() })
      .then((res) => res.body.dump())
      .catch(() => undefined)
    await expect
      .poll(() => warns(agentLog.records, /could not serve/).map((r) => r.obj.code))
      .toEqual(['LOCAL_BAD_RESPONSE'])
    await expect
      .poll(() => warns(relayLog.records, /^relay: 502/).map((r) => r.obj.code))
      .toEqual(['TUNNEL_UPSTREAM_ERROR'])
  })

  test('past the deadline: the relay logs the status the caller got (504, or 502 if the agent gave up first)', async () => {
    const relayLog = recordingLogger()
    const hang = deferred<void>()
    onTestFinished(() => hang.resolve())
    await using stack = await startStack(async (_req, res) => res.end(await hang.promise), {
      relay: { logger: relayLog, defaultDeadlineMs: 100 },
    })
    const res = await request(`${stack.tunnel.url}/slow`, {
      headers: stack.tunnel.headers,
      dispatcher: client(),
    })
    await res.body.dump()
    expect([502, 504]).toContain(res.statusCode)
    await expect
      .poll(() => warns(relayLog.records, /^relay: 50[24]/).map((r) => r.obj.status))
      .toEqual([res.statusCode])
  })

  test('the agent disconnecting mid-request: relay 502 TUNNEL_AGENT_DISCONNECTED', async () => {
    const relayLog = recordingLogger()
    const started = deferred<void>()
    const hang = deferred<void>()
    onTestFinished(() => hang.resolve())
    await using stack = await startStack(
      async (_req, res) => {
        started.resolve()
        res.end(await hang.promise)
      },
      { relay: { logger: relayLog } },
    )
    const pending = request(`${stack.tunnel.url}/x`, { headers: stack.tunnel.headers, dispatcher: client() })
    await started.promise
    await stack.tunnel.close()
    const res = await pending
    await res.body.dump()
    expect(res.statusCode).toBe(502)
    expect(warns(relayLog.records, /^relay: 502/).map((r) => r.obj.code)).toEqual([
      'TUNNEL_AGENT_DISCONNECTED',
    ])
  })

  test('a request the local server answers is not logged at WARN', async () => {
    const relayLog = recordingLogger()
    const agentLog = recordingLogger()
    await using stack = await startStack((_req, res) => res.end('ok'), {
      relay: { logger: relayLog },
      agent: { logger: agentLog },
    })
    const res = await request(`${stack.tunnel.url}/ok`, {
      headers: stack.tunnel.headers,
      dispatcher: client(),
    })
    expect(await res.body.text()).toBe('ok')
    expect([...relayLog.records, ...agentLog.records].filter((r) => r.level === 'warn')).toEqual([])
  })
})

describe('the agent reconnecting', () => {
  test('"disconnected" at WARN, then "reconnected" at INFO with attempts and downtime', async () => {
    const leaseStore = createMemoryLeaseStore()
    await using local = await startLocalServer((_req, res) => res.end('ok'))
    const relay1 = await createRelayServer({ apiKeys: ['k'], leaseStore })
    const agentLog = recordingLogger()
    await using tunnel = await synthTunnel({
      backendUrl: relay1.url,
      apiKey: 'k',
      env: {},
      logger: agentLog,
      reconnectInitialMs: 20,
      reconnectMaxMs: 40,
    }).open(local.target)
    expect(agentLog.records.filter((r) => r.msg === 'synthtunnel: agent connected')).toHaveLength(1)
    const down = performance.now()
    await relay1.close()
    await expect.poll(() => tunnel.connected).toBe(false)
    // Let the agent fail a few attempts against the closed port before the relay is back.
    await expect
      .poll(() => agentLog.records.filter((r) => r.msg === 'synthtunnel: agent reconnecting').length)
      .toBeGreaterThanOrEqual(3)
    await using relay2 = await createRelayServer({ apiKeys: ['k'], leaseStore, port: relay1.port })
    await expect.poll(() => tunnel.connected, { timeout: 8_000 }).toBe(true)
    const downFor = performance.now() - down
    expect(relay2.stats().agents).toBe(1)
    const disconnected = agentLog.records.find((r) => r.msg === 'synthtunnel: agent disconnected')
    expect(disconnected?.level).toBe('warn')
    const reconnected = agentLog.records.filter((r) => r.msg === 'synthtunnel: agent reconnected')
    expect(reconnected).toHaveLength(1)
    const attempts = agentLog.records.filter((r) => r.msg === 'synthtunnel: agent reconnecting').length
    expect(reconnected[0]).toMatchObject({
      level: 'info',
      obj: { connection: 2, attempts, leaseId: tunnel.leaseId, downtimeMs: expect.any(Number) },
    })
    const downtimeMs = reconnected[0]!.obj.downtimeMs as number
    expect(downtimeMs).toBeGreaterThan(0)
    expect(downtimeMs).toBeLessThanOrEqual(Math.ceil(downFor))
    expect(agentLog.records.filter((r) => r.msg === 'synthtunnel: agent connected')).toHaveLength(1)
  })
})
