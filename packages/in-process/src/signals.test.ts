import { constants } from 'node:os'
import { join } from 'node:path'
import { isPortAvailable } from '@taskapp/port-manager'
import { describe, expect, it, onTestFinished } from 'vitest'
import { InProcessTaskApp } from './in-process-task-app'
import { spawnFixture } from '@taskapp/test-utils'
import type { FixtureProcess } from '@taskapp/test-utils'
import { fakeTunnel, plainApp } from './test-helpers'
import { setTunnelModuleLoader } from './tunnels'

const SCRIPT = join(import.meta.dirname, 'fixtures', 'signal-app.ts')

function start(mode: string, instances = 1): FixtureProcess {
  const fixture = spawnFixture(SCRIPT, [mode, String(instances)], {
    cwd: join(import.meta.dirname, '..'),
    env: { NODE_OPTIONS: '' },
    stdin: 'pipe',
  })
  onTestFinished(() => fixture.close())
  return fixture
}

/** Exit status as a shell reports it: the code, or 128 + the signal number. */
function shellStatus({ code, signal }: { code: number | null; signal: NodeJS.Signals | null }): number {
  return code ?? 128 + constants.signals[signal!]
}

async function allFree(ports: number[]): Promise<boolean> {
  const free = await Promise.all(ports.map((port) => isPortAvailable(port, { host: '127.0.0.1' })))
  return free.every(Boolean)
}

describe('SIGINT / SIGTERM in a real child process', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    '%s stops every running instance, then the process dies of the signal (status %i)',
    async (signal, status) => {
      const fixture = start('plain', 2)
      const ready = await fixture.waitForJson((l) => l.event === 'ready', 'ready')
      const ports = ready.ports as number[]
      expect(ports).toHaveLength(2)
      expect(new Set(ports).size).toBe(2)
      // One shared handler for both instances.
      expect(ready.sigint).toBe(1)
      fixture.child.kill(signal)
      const exit = await fixture.exited
      expect(exit).toEqual({ code: null, signal })
      expect(shellStatus(exit)).toBe(status)
      const stopped = fixture
        .jsonLines()
        .filter((l) => l.event === 'onStop')
        .map((l) => l.port)
      expect(stopped.sort()).toEqual([...ports].sort())
      expect(await allFree(ports)).toBe(true)
    },
  )

  it('a signal during start aborts it, frees the port, and still exits 130', async () => {
    const fixture = start('never-healthy')
    const bound = await fixture.waitForJson((l) => l.event === 'bound', 'bound')
    fixture.child.kill('SIGINT')
    const exit = await fixture.exited
    expect(shellStatus(exit)).toBe(130)
    expect(fixture.jsonLines().some((l) => l.event === 'ready')).toBe(false)
    expect(await allFree([bound.port as number])).toBe(true)
  })

  it('a signal during start settles start() even when the re-raised signal cannot kill the process, which then exits 130', async () => {
    const fixture = start('signal-survives')
    const bound = await fixture.waitForJson((l) => l.event === 'bound', 'bound')
    fixture.child.kill('SIGINT')
    const settled = await fixture.waitForJson((l) => l.event === 'start-settled', 'start-settled')
    expect(settled.code).toBe('TASKAPP_ERR_ABORTED')
    const exit = await fixture.exited
    expect(exit).toEqual({ code: 130, signal: null })
    expect(await allFree([bound.port as number])).toBe(true)
  })

  it('with a user handler of their own: we clean up, and the process does not exit by us', async () => {
    const fixture = start('user-handler')
    const ready = await fixture.waitForJson((l) => l.event === 'ready', 'ready')
    const port = (ready.ports as number[])[0]!
    fixture.child.kill('SIGINT')
    await fixture.waitForJson((l) => l.event === 'user-handler', 'the user handler')
    await fixture.waitForJson((l) => l.event === 'stopped', 'stopped')
    expect(await allFree([port])).toBe(true)
    // Still alive after our cleanup finished: it answers on stdin...
    fixture.child.stdin!.write('ping\n')
    await fixture.waitForJson((l) => l.event === 'pong', 'pong')
    expect(fixture.child.exitCode).toBeNull()
    // ...and exits when the user decides.
    fixture.child.stdin!.write('exit\n')
    expect(await fixture.exited).toEqual({ code: 0, signal: null })
  })

  it('handleSignals: false leaves Node’s default: the process dies at once, our onStop never runs', async () => {
    const fixture = start('opt-out')
    const ready = await fixture.waitForJson((l) => l.event === 'ready', 'ready')
    expect(ready.sigint).toBe(0)
    fixture.child.kill('SIGTERM')
    expect(shellStatus(await fixture.exited)).toBe(143)
    expect(fixture.jsonLines().some((l) => l.event === 'onStop')).toBe(false)
  })
})

describe('shared signal handler bookkeeping (in-process)', () => {
  it('installs one SIGINT/SIGTERM handler for all instances and removes it with the last one', async () => {
    const sigint = process.listenerCount('SIGINT')
    const sigterm = process.listenerCount('SIGTERM')
    const a = await InProcessTaskApp.start({ app: plainApp(), port: 0, tunnel: { mode: 'local' } })
    onTestFinished(() => a.stop())
    const b = await InProcessTaskApp.start({ app: plainApp(), port: 0, tunnel: { mode: 'local' } })
    onTestFinished(() => b.stop())
    expect(process.listenerCount('SIGINT')).toBe(sigint + 1)
    expect(process.listenerCount('SIGTERM')).toBe(sigterm + 1)
    await a.stop()
    expect(process.listenerCount('SIGINT')).toBe(sigint + 1)
    await b.stop()
    expect(process.listenerCount('SIGINT')).toBe(sigint)
    expect(process.listenerCount('SIGTERM')).toBe(sigterm)
  })

  it('handleSignals: false installs nothing', async () => {
    const sigint = process.listenerCount('SIGINT')
    await using app = await InProcessTaskApp.start({
      app: plainApp(),
      port: 0,
      tunnel: { mode: 'local' },
      handleSignals: false,
    })
    expect(app.state).toBe('running')
    expect(process.listenerCount('SIGINT')).toBe(sigint)
  })

  it('on a signal with a user handler present: stops every instance, calls killAllTrackedChildren, exits nothing', async () => {
    let kills = 0
    const tunnel = fakeTunnel()
    onTestFinished(
      setTunnelModuleLoader(async (specifier) => {
        if (specifier !== '@taskapp/tunnel-cloudflare') throw new Error(`unexpected ${specifier}`)
        return { cloudflareQuickTunnel: () => tunnel, killAllTrackedChildren: () => void (kills += 1) }
      }),
    )
    const userHandler = (): void => {}
    process.on('SIGINT', userHandler)
    onTestFinished(() => void process.off('SIGINT', userHandler))
    const sigint = process.listenerCount('SIGINT')
    const a = await InProcessTaskApp.start({ app: plainApp(), port: 0, tunnel: { mode: 'quick' } })
    const b = await InProcessTaskApp.start({ app: plainApp(), port: 0, tunnel: { mode: 'local' } })
    onTestFinished(() => Promise.all([a.stop(), b.stop()]).then(() => {}))
    const bothStopped = Promise.all([
      new Promise((r) => a.once('stop', r)),
      new Promise((r) => b.once('stop', r)),
    ])
    // Deliver SIGINT to the listeners the way Node does (a real kill would also run ours, then the user's).
    process.emit('SIGINT', 'SIGINT')
    await bothStopped
    expect(kills).toBe(1)
    expect(tunnel.current?.closeCalls).toBe(1)
    expect(await isPortAvailable(a.port, { host: '127.0.0.1' })).toBe(true)
    expect(await isPortAvailable(b.port, { host: '127.0.0.1' })).toBe(true)
    await expect.poll(() => process.listenerCount('SIGINT'), { timeout: 10_000, interval: 10 }).toBe(sigint)
  })
})
