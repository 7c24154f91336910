import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { isProcessAlive as isAlive, recordingLogger } from '@taskapp/test-utils'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { cloudflareQuickTunnel } from './index'
import { DOUBLE_PATH, PARENT_FIXTURE, getJson, startOrigin, targetFor } from './test-helpers'

/** Waits until the pid is gone (a zombie counts as gone). */
async function waitGone(pid: number): Promise<void> {
  await vi.waitFor(() => expect(isAlive(pid), `pid ${pid} alive`).toBe(false), {
    timeout: 15_000,
    interval: 25,
  })
}

interface Started {
  pid: number
  supervisorPid: number
  url: string
  metricsUrl: string
}

/** Spawns the parent fixture, waits for its first stdout line; cleans everything up afterwards. */
async function startParent(mode: string, env: Record<string, string> = {}) {
  const parent = spawn(process.execPath, ['--import', 'tsx', PARENT_FIXTURE, mode], {
    cwd: dirname(PARENT_FIXTURE),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  parent.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  const exited = once(parent, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const spawned: (number | undefined)[] = [parent.pid]
  onTestFinished(() => {
    for (const pid of spawned) if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL')
  })
  const lines = createInterface({ input: parent.stdout })
  const first = await Promise.race([
    once(lines, 'line').then(([l]) => l as string),
    exited.then(([code, signal]) => {
      throw new Error(`parent exited early (${code}, ${signal}): ${stderr}`)
    }),
  ])
  const started = JSON.parse(first) as Started
  spawned.push(started.pid, started.supervisorPid)
  expect(isAlive(started.pid)).toBe(true)
  expect(isAlive(started.supervisorPid)).toBe(true)
  expect(started.supervisorPid).not.toBe(parent.pid)
  return { parent, started, exited, stderr: () => stderr }
}

describe('no cloudflared outlives its parent (real processes, real signals)', { timeout: 45_000 }, () => {
  it.each([
    { signal: 'SIGTERM' as const, doubleMode: '' },
    { signal: 'SIGKILL' as const, doubleMode: '' },
    { signal: 'SIGKILL' as const, doubleMode: 'ignore-sigterm' },
  ])(
    'parent killed by $signal (double mode "$doubleMode"): the watchdog stops cloudflared',
    async ({ signal, doubleMode }) => {
      const { parent, started, exited } = await startParent('wait', {
        CLOUDFLARED_DOUBLE_MODE: doubleMode,
        CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50',
        KILL_GRACE_MS: '500',
      })
      parent.kill(signal)
      const [code, sig] = await exited
      // The package installs no SIGTERM handler: the parent dies the way the signal says.
      expect({ code, sig }).toEqual({ code: null, sig: signal })
      await waitGone(started.pid)
      await waitGone(started.supervisorPid)
    },
  )

  it.each([
    { mode: 'exit', expected: { code: 0, sig: null } },
    { mode: 'throw', expected: { code: 1, sig: null } },
  ])('parent that ends by $mode kills its cloudflared on the way out', async ({ mode, expected }) => {
    const { started, exited, stderr } = await startParent(mode, {
      CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50',
    })
    const [code, sig] = await exited
    expect({ code, sig }).toEqual(expected)
    if (mode === 'throw') expect(stderr()).toContain('boom from the parent fixture')
    await waitGone(started.pid)
    await waitGone(started.supervisorPid)
  })

  it('a parent with its own SIGTERM handler keeps its exit code, and cloudflared still goes', async () => {
    const { parent, started, exited } = await startParent('handle', {
      CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50',
    })
    parent.kill('SIGTERM')
    const [code, sig] = await exited
    expect({ code, sig }).toEqual({ code: 143, sig: null })
    await waitGone(started.pid)
    await waitGone(started.supervisorPid)
  })

  it('cloudflared runs as a grandchild through the watchdog, in the parent process group', async () => {
    const { parent, started } = await startParent('wait', { CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50' })
    const { readFile } = await import('node:fs/promises')
    const stat = async (pid: number) =>
      (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /, '').split(' ')
    const [, ppidOfSupervisor, pgrpOfSupervisor] = await stat(started.supervisorPid)
    const [, ppidOfDouble, pgrpOfDouble] = await stat(started.pid)
    expect(Number(ppidOfSupervisor)).toBe(parent.pid)
    expect(Number(ppidOfDouble)).toBe(started.supervisorPid)
    expect(pgrpOfDouble).toBe(pgrpOfSupervisor)
    const cmdline = (await readFile(`/proc/${started.pid}/cmdline`, 'utf8')).split('\0')
    expect(cmdline).toContain(DOUBLE_PATH)
  })
})

/** A private runtime dir (XDG_RUNTIME_DIR) for the PID records, so no other test run sweeps ours. */
async function runtimeDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cf-runtime-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * SIGKILLs the parent and its watchdog "at once": both are stopped first (SIGSTOP), so neither can
 * react to the other's death (the watchdog to the closed IPC channel, the parent to the watchdog's
 * exit), then both are killed.
 */
async function killBoth(parent: ReturnType<typeof spawn>, supervisorPid: number, exited: Promise<unknown>) {
  process.kill(supervisorPid, 'SIGSTOP')
  process.kill(parent.pid!, 'SIGSTOP')
  process.kill(parent.pid!, 'SIGKILL')
  process.kill(supervisorPid, 'SIGKILL')
  await exited
  await waitGone(supervisorPid)
}

describe('the parent and the watchdog both SIGKILLed, cloudflared stubborn', { timeout: 45_000 }, () => {
  it('the kernel sends cloudflared SIGTERM when its watchdog dies (setpriv --pdeathsig)', async () => {
    const { parent, started, exited } = await startParent('wait', {
      CLOUDFLARED_DOUBLE_STUBBORN: '1',
      CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50',
      XDG_RUNTIME_DIR: await runtimeDir(),
    })
    await killBoth(parent, started.supervisorPid, exited)
    // Nothing else is left to stop it (no sweep runs: no tunnel is opened afterwards).
    await waitGone(started.pid)
  })

  it('without the wrapper it survives, and the next tunnel start sweeps it by its PID record', async () => {
    const dir = await runtimeDir()
    const { parent, started, exited } = await startParent('wait', {
      CLOUDFLARED_DOUBLE_STUBBORN: '1',
      CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50',
      TASKAPP_CLOUDFLARED_PDEATHSIG: '0',
      XDG_RUNTIME_DIR: dir,
    })
    await killBoth(parent, started.supervisorPid, exited)
    // A parent-death signal would be queued by now (the kernel sends it while the watchdog exits);
    // the second request is answered after the double's signal handlers have run.
    await getJson(`${started.metricsUrl}/taskapp-double/info`)
    const info = await getJson<{ signals: string[] }>(`${started.metricsUrl}/taskapp-double/info`)
    expect(info.signals).toEqual([])
    expect(isAlive(started.pid)).toBe(true)

    await using origin = await startOrigin()
    const logger = recordingLogger()
    await using tunnel = await cloudflareQuickTunnel({
      cloudflaredPath: DOUBLE_PATH,
      env: { ...process.env, XDG_RUNTIME_DIR: dir, CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50' },
      logger,
    }).open(targetFor(origin))
    expect(tunnel.pid).not.toBe(started.pid)
    await waitGone(started.pid)
    expect(logger.records).toContainEqual(
      expect.objectContaining({
        level: 'info',
        obj: { pid: started.pid, ownerPid: parent.pid },
        msg: expect.stringContaining('orphaned cloudflared') as unknown,
      }),
    )
  })
})
