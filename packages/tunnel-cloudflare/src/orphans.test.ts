import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname } from 'node:path'
import { createInterface } from 'node:readline'
import { isProcessAlive as isAlive } from '@taskapp/test-utils'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { DOUBLE_PATH, PARENT_FIXTURE } from './test-helpers'

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
