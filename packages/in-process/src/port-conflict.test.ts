/**
 * A port that was taken never moves silently: `onPortConflict: 'next'` and `'kill'` are logged at
 * INFO and emitted as `port-conflict`. The holder is a real child process on 127.0.0.1.
 */
import type { PortConflictEvent } from '@taskapp/port-manager'
import { recordingLogger, spawnProcess } from '@taskapp/test-utils'
import { describe, expect, it, onTestFinished } from 'vitest'
import { InProcessTaskApp } from './in-process-task-app'
import { plainApp } from './test-helpers'

/** A child process listening on a free port of 127.0.0.1, and that port. */
async function holdPort() {
  const holder = spawnProcess(process.execPath, [
    '-e',
    "const s = require('node:net').createServer(); s.listen(0, '127.0.0.1', () => console.log('PORT ' + s.address().port))",
  ])
  onTestFinished(() => holder.close())
  const [, port] = await holder.waitForLine(/^PORT (\d+)$/, 10_000)
  return { holder, port: Number(port) }
}

async function startOn(port: number, onPortConflict: 'next' | 'kill') {
  const logger = recordingLogger()
  const events: PortConflictEvent[] = []
  const app = new InProcessTaskApp({
    app: plainApp(),
    port,
    onPortConflict,
    handleSignals: false,
    tunnel: { mode: 'local' },
    logger,
  })
  app.on('port-conflict', (event) => events.push(event))
  onTestFinished(() => app.stop())
  await app.start()
  return { app, logger, events }
}

describe.runIf(process.platform === 'linux')('a taken port is reported, never passed over silently', () => {
  it("'next': INFO 'port N is taken by PID … (cmd): serving on M' and a port-conflict event", async () => {
    const { holder, port } = await holdPort()
    const { app, logger, events } = await startOn(port, 'next')
    expect(app.port).not.toBe(port)
    expect(events).toEqual([
      {
        policy: 'next',
        port,
        host: '127.0.0.1',
        owner: { pid: holder.pid, command: expect.stringContaining('node') as string },
        boundPort: app.port,
      },
    ])
    const info = logger.records.filter((r) => r.level === 'info' && r.msg?.startsWith(`port ${port}`))
    expect(info).toHaveLength(1)
    expect(info[0]?.msg).toMatch(
      new RegExp(`^port ${port} is taken by PID ${holder.pid} \\(.*node.*\\): serving on ${app.port}$`),
    )
  })

  it("'kill': INFO 'stopped PID … (cmd), which held port N' and the holder is gone", async () => {
    const { holder, port } = await holdPort()
    const { app, logger, events } = await startOn(port, 'kill')
    expect(app.port).toBe(port)
    expect(await holder.exited).toEqual({ code: null, signal: 'SIGTERM' })
    expect(events).toMatchObject([{ policy: 'kill', port, owner: { pid: holder.pid }, boundPort: port }])
    const info = logger.records.filter((r) => r.level === 'info' && r.msg?.startsWith('stopped PID'))
    expect(info).toHaveLength(1)
    expect(info[0]?.msg).toMatch(
      new RegExp(`^stopped PID ${holder.pid} \\(.*node.*\\), which held port ${port}: serving on ${port}$`),
    )
  })

  it('a port that was free says nothing', async () => {
    const { app, logger, events } = await startOn(0, 'next')
    expect(app.port).toBeGreaterThan(0)
    expect(events).toEqual([])
    expect(logger.records.filter((r) => r.msg?.includes('taken'))).toEqual([])
  })
})
