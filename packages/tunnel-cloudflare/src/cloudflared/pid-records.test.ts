import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isProcessAlive as isAlive, recordingLogger } from '@taskapp/test-utils'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { procStat, recordsDir, sweepOrphans } from './pid-records'
import type { PidRecord } from './pid-records'

/** A private XDG_RUNTIME_DIR and the records folder inside it. */
async function runtime() {
  const base = await mkdtemp(join(tmpdir(), 'cf-records-'))
  onTestFinished(() => rm(base, { recursive: true, force: true }))
  const env = { XDG_RUNTIME_DIR: base }
  const dir = await recordsDir(env)
  if (dir === undefined) throw new Error('records folder refused')
  return { env, dir }
}

/** A long-running process that ignores stdin and its parent; killed after the test. */
async function victim() {
  const marker = randomUUID()
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60_000)', 'cloudflared', marker], {
    stdio: 'ignore',
  })
  await once(child, 'spawn')
  const pid = child.pid!
  onTestFinished(() => {
    if (isAlive(pid)) process.kill(pid, 'SIGKILL')
  })
  const stat = await procStat(pid)
  return { pid, startTime: stat!.startTime, argv: ['cloudflared', marker] }
}

/** The pid of a process that has exited (its owner "died"). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(child, 'exit')
  return child.pid!
}

async function bootId(): Promise<string> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
}

async function write(dir: string, record: PidRecord): Promise<string> {
  const name = `${record.pid}-${record.startTime}.json`
  await writeFile(join(dir, name), JSON.stringify(record), { mode: 0o600 })
  return name
}

async function waitGone(pid: number): Promise<void> {
  await vi.waitFor(() => expect(isAlive(pid), `pid ${pid} alive`).toBe(false), { timeout: 10_000 })
}

describe('PID records swept at a tunnel start (real processes)', () => {
  it('SIGTERMs a recorded process whose owner is dead, and deletes the record', async () => {
    const { env, dir } = await runtime()
    const v = await victim()
    const ownerPid = await deadPid()
    await write(dir, { bootId: await bootId(), ...v, ownerPid, ownerStartTime: '1' })
    const logger = recordingLogger()
    expect(await sweepOrphans(env, logger)).toEqual([v.pid])
    await waitGone(v.pid)
    expect(await readdir(dir)).toEqual([])
    expect(logger.records).toContainEqual(
      expect.objectContaining({ level: 'info', obj: { pid: v.pid, ownerPid } }),
    )
  })

  it('leaves a process whose owner is alive, and keeps its record', async () => {
    const { env, dir } = await runtime()
    const v = await victim()
    const owner = await procStat(process.pid)
    const name = await write(dir, {
      bootId: await bootId(),
      ...v,
      ownerPid: process.pid,
      ownerStartTime: owner!.startTime,
    })
    expect(await sweepOrphans(env, recordingLogger())).toEqual([])
    expect(await readdir(dir)).toEqual([name])
    expect(isAlive(v.pid)).toBe(true)
  })

  it.each([
    ['another start time (a recycled pid)', { startTime: '1' }],
    ['another command line', { argv: ['cloudflared', 'someone-else'] }],
    ['another boot', { bootId: 'not-this-boot' }],
  ])('spares a live process with %s, and deletes the record', async (_what, change) => {
    const { env, dir } = await runtime()
    const v = await victim()
    await write(dir, {
      bootId: await bootId(),
      ...v,
      ownerPid: await deadPid(),
      ownerStartTime: '1',
      ...change,
    })
    expect(await sweepOrphans(env, recordingLogger())).toEqual([])
    expect(await readdir(dir)).toEqual([])
    expect(isAlive(v.pid)).toBe(true)
  })

  it('deletes the record of a process that is gone, and an unreadable record, and goes on', async () => {
    const { env, dir } = await runtime()
    const gone = await deadPid()
    await write(dir, {
      bootId: await bootId(),
      pid: gone,
      startTime: '1',
      argv: ['cloudflared'],
      ownerPid: await deadPid(),
      ownerStartTime: '1',
    })
    await writeFile(join(dir, 'garbage.json'), '{not json')
    const v = await victim()
    await write(dir, { bootId: await bootId(), ...v, ownerPid: await deadPid(), ownerStartTime: '1' })
    expect(await sweepOrphans(env, recordingLogger())).toEqual([v.pid])
    expect(await readdir(dir)).toEqual([])
    await waitGone(v.pid)
  })

  it('refuses a records folder that others can write to: nothing is read or killed', async () => {
    const { env, dir } = await runtime()
    const v = await victim()
    await write(dir, { bootId: await bootId(), ...v, ownerPid: await deadPid(), ownerStartTime: '1' })
    await chmod(dir, 0o777)
    const logger = recordingLogger()
    expect(await sweepOrphans(env, logger)).toEqual([])
    expect(isAlive(v.pid)).toBe(true)
    expect(logger.records).toContainEqual(
      expect.objectContaining({ level: 'debug', msg: expect.stringContaining('not private') as unknown }),
    )
  })
})
