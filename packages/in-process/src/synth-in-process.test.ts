/**
 * `InProcessTaskApp` with the SynthTunnel agent in its own process: by default the agent hands
 * requests to the app's server in memory (the in-process path), so the server sees no loopback
 * connection: the request's socket is not one accepted on the bound port, and it reports the
 * relay's address. A real relay on 127.0.0.1, a real app.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { describe, expect, it, onTestFinished } from 'vitest'
import { request } from 'undici'
import { synthTunnel } from '@taskapp/tunnel-synth'
import { InProcessTaskApp } from './in-process-task-app'
import { get, plainApp, testConfig } from './test-helpers'

/** `/slow` answers with what the app's server sees of the request's socket. */
const socketReport = (req: IncomingMessage, res: ServerResponse) =>
  res.end(
    JSON.stringify({
      localPort: req.socket.localPort,
      remoteAddress: req.socket.remoteAddress,
      remotePort: req.socket.remotePort,
      marker: req.headers['x-synth-relay'],
    }),
  )

async function startRelay() {
  const { createRelayServer } = await import('@taskapp/tunnel-synth/relay')
  const relay = await createRelayServer({ apiKeys: ['relay-key-for-tests'], port: 0, host: '127.0.0.1' })
  onTestFinished(() => relay.close())
  return relay
}

describe("tunnel mode 'synthtunnel' in the same process as the app", () => {
  it('is in-process by default: no loopback connection, the relay as remote address, the marker set', async () => {
    const relay = await startRelay()
    const app = await InProcessTaskApp.start({
      app: plainApp({ onSlow: socketReport }),
      port: 0,
      handleSignals: false,
      tunnel: { mode: 'synthtunnel', relayUrl: relay.url, relayApiKey: 'relay-key-for-tests' },
    })
    onTestFinished(() => app.stop())
    const res = await get(`${app.url}/slow`, { headers: { ...app.headers } })
    expect(res.status).toBe(200)
    const seen = JSON.parse(res.body) as Record<string, unknown>
    expect(seen).toEqual({
      localPort: 0, // not a connection accepted on app.port
      remoteAddress: '127.0.0.1',
      remotePort: Number(new URL(relay.url).port), // the relay's end of the agent's WebSocket
      marker: '1',
    })
    expect(seen.localPort).not.toBe(app.port)
  })

  it('serves the task app (express, JSON body parsing, API key) through the in-process path', async () => {
    const relay = await startRelay()
    const app = await InProcessTaskApp.start({
      config: testConfig(),
      apiKey: 'task-key-for-in-process-path',
      port: 0,
      handleSignals: false,
      tunnel: { mode: 'synthtunnel', relayUrl: relay.url, relayApiKey: 'relay-key-for-tests' },
    })
    onTestFinished(() => app.stop())
    const rollout = {
      trace_correlation_id: 'trace-1',
      env: { env_name: 'test', seed: 1, config: {} },
      policy: { policy_name: 'p', config: {}, output_mode: 'tool_calls' },
      on_done: 'reset',
      safety: { max_time_s: 60 },
    }
    const res = await request(`${app.url}/rollout`, {
      method: 'POST',
      headers: { ...app.headers, 'content-type': 'application/json' },
      body: JSON.stringify(rollout),
    })
    expect(res.statusCode).toBe(200)
    expect(await res.body.json()).toMatchObject({ trace_correlation_id: 'trace-1' })
  })

  it('inProcess: false on a synthTunnel backend keeps the loopback socket path', async () => {
    const relay = await startRelay()
    const app = await InProcessTaskApp.start({
      app: plainApp({ onSlow: socketReport }),
      port: 0,
      handleSignals: false,
      tunnel: synthTunnel({
        backendUrl: relay.url,
        apiKey: 'relay-key-for-tests',
        env: {},
        localApiKeys: [],
        inProcess: false,
      }),
    })
    onTestFinished(() => app.stop())
    const res = await get(`${app.url}/slow`, { headers: { ...app.headers } })
    expect(JSON.parse(res.body)).toMatchObject({
      localPort: app.port,
      remoteAddress: '127.0.0.1',
      marker: '1',
    })
  })
})
