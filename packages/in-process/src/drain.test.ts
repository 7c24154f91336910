import { Agent } from 'node:http'
import type { ServerResponse } from 'node:http'
import { describe, expect, it, onTestFinished } from 'vitest'
import { InProcessTaskApp } from './in-process-task-app'
import { deferred } from '@taskapp/test-utils'
import { get, plainApp } from './test-helpers'

const base = { port: 0, tunnel: { mode: 'local' }, handleSignals: false } as const

describe('stop() drains in-flight requests', () => {
  it('a request that finishes within stopGraceMs completes normally', async () => {
    const arrived = deferred<ServerResponse>()
    const app = await InProcessTaskApp.start({
      ...base,
      stopGraceMs: 30_000,
      app: plainApp({ onSlow: (_req, res) => arrived.resolve(res) }),
    })
    onTestFinished(() => app.stop())
    const response = get(`${app.url}/slow`)
    const res = await arrived.promise
    const stopped = app.stop()
    expect(app.state).toBe('stopping')
    // New connections are refused while the in-flight request is still being served.
    await expect(get(`${app.url}/health`)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    res.end('finished late')
    await expect(response).resolves.toMatchObject({ status: 200, body: 'finished late' })
    await stopped
    expect(app.state).toBe('stopped')
  })

  it('a request still running after stopGraceMs is cut off (socket destroyed)', async () => {
    const arrived = deferred<ServerResponse>()
    const app = await InProcessTaskApp.start({
      ...base,
      stopGraceMs: 100,
      app: plainApp({ onSlow: (_req, res) => arrived.resolve(res) }),
    })
    // Settle into a value right away so the rejection is never unhandled.
    const outcome = get(`${app.url}/slow`).then(
      () => 'completed',
      (err: NodeJS.ErrnoException) => err.code,
    )
    const res = await arrived.promise
    const socketClosed = new Promise((resolve) => res.socket!.once('close', resolve))
    await app.stop()
    await socketClosed
    expect(await outcome).toBe('ECONNRESET')
    expect(res.writableEnded).toBe(false)
  })

  it('closes idle keep-alive sockets at once (stop does not wait for the grace period)', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    onTestFinished(() => agent.destroy())
    const app = await InProcessTaskApp.start({ ...base, stopGraceMs: 60_000, app: plainApp() })
    onTestFinished(() => app.stop())
    const first = await get(`${app.url}/x`, { agent })
    const second = await get(`${app.url}/x`, { agent })
    expect(first.status).toBe(200)
    expect(second.socketReused).toBe(true)
    const [socket] = Object.values(agent.freeSockets).flat()
    expect(socket).toBeDefined()
    const closed = new Promise((resolve) => socket!.once('close', resolve))
    // With a 60 s grace and a 20 s test timeout, this only passes if the idle socket is closed at once.
    await app.stop()
    await closed
  })

  it('a keep-alive connection with a request in flight is closed after that response', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    onTestFinished(() => agent.destroy())
    const arrived = deferred<ServerResponse>()
    const app = await InProcessTaskApp.start({
      ...base,
      stopGraceMs: 60_000,
      app: plainApp({ onSlow: (_req, res) => arrived.resolve(res) }),
    })
    onTestFinished(() => app.stop())
    await get(`${app.url}/x`, { agent })
    const response = get(`${app.url}/slow`, { agent })
    const res = await arrived.promise
    const stopped = app.stop()
    res.end('done')
    const result = await response
    expect(result).toMatchObject({ status: 200, body: 'done', socketReused: true })
    await stopped
  })
})
