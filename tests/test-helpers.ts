/**
 * Helpers of the end-to-end tests: spawn TypeScript entry points as real child processes from the
 * repo root (with `@taskapp/test-utils`), inspect the process table (`/proc`) for survivors, and
 * read exit statuses. Waiting is Vitest's `vi.waitFor` / `expect.poll`.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { constants as osConstants } from 'node:os'
import { fileURLToPath } from 'node:url'
import { isPortAvailable } from '@taskapp/sdk'
import { expect } from 'vitest'
import { isProcessAlive, spawnFixture, spawnProcess as spawnAnyProcess } from '@taskapp/test-utils'
import type { FixtureProcess } from '@taskapp/test-utils'

/** The monorepo root. */
export const REPO_ROOT: string = join(dirname(fileURLToPath(import.meta.url)), '..')

/**
 * Spawns `node --conditions=@taskapp/source --import tsx <file> ...args` from the repo root, as
 * the leader of a new process group (so every descendant can be found, and killed on dispose,
 * by its group id).
 */
export function spawnTs(
  file: string,
  args: readonly string[] = [],
  options: { env?: NodeJS.ProcessEnv } = {},
): FixtureProcess {
  return spawnFixture(file, args, { cwd: REPO_ROOT, env: options.env })
}

/** Like {@link spawnTs}, for any command (from the repo root unless `cwd` says otherwise). */
export function spawnProcess(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): FixtureProcess {
  return spawnAnyProcess(command, args, { cwd: options.cwd ?? REPO_ROOT, env: options.env })
}

interface ProcStat {
  pid: number
  state: string
  ppid: number
  pgid: number
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses: split after the last ')'.
    const rest = raw.slice(raw.lastIndexOf(')') + 2).split(' ')
    return { pid, state: rest[0] ?? '?', ppid: Number(rest[1]), pgid: Number(rest[2]) }
  } catch {
    return undefined
  }
}

function allStats(): ProcStat[] {
  const stats: ProcStat[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const stat = readStat(Number(name))
    if (stat) stats.push(stat)
  }
  return stats
}

/** Live processes whose process group is `pgid` (survivors of a group leader included). */
export function groupMembers(pgid: number): number[] {
  return allStats()
    .filter((s) => s.pgid === pgid && s.state !== 'Z' && s.state !== 'X')
    .map((s) => s.pid)
}

/** Live descendants of `pid` right now (children, grandchildren, ...). */
export function descendants(pid: number): number[] {
  const stats = allStats().filter((s) => s.state !== 'Z' && s.state !== 'X')
  const out: number[] = []
  const queue = [pid]
  while (queue.length > 0) {
    const parent = queue.shift() as number
    for (const s of stats) {
      if (s.ppid === parent) {
        out.push(s.pid)
        queue.push(s.pid)
      }
    }
  }
  return out
}

/** Can 127.0.0.1:`port` be bound right now? */
export async function portIsFree(port: number): Promise<boolean> {
  return isPortAvailable(port, { host: '127.0.0.1' })
}

/**
 * Waits (up to 10 s each) until `port` is free, no process of `proc`'s group is left, and none
 * of `pids` runs.
 */
export async function expectAllGone(
  proc: { pid: number },
  port: number,
  pids: readonly number[] = [],
): Promise<void> {
  const poll = { timeout: 10_000, interval: 25 }
  await expect.poll(() => portIsFree(port), { ...poll, message: `port ${port} to be free` }).toBe(true)
  await expect
    .poll(() => groupMembers(proc.pid), { ...poll, message: `every process of group ${proc.pid} to be gone` })
    .toEqual([])
  for (const pid of pids) {
    await expect.poll(() => isProcessAlive(pid), { ...poll, message: `pid ${pid} to be gone` }).toBe(false)
  }
}

/**
 * The status a shell reports for an exit (`$?`): the exit code, or 128 + the signal number when
 * the process died of a signal. A process that re-raises SIGINT after cleaning up (as
 * InProcessTaskApp does, "the way Node would have exited") and one that calls `process.exit(130)`
 * both give 130.
 */
export function shellStatus(exit: { code: number | null; signal: NodeJS.Signals | null }): number {
  if (exit.code !== null) return exit.code
  const number = exit.signal === null ? undefined : osConstants.signals[exit.signal]
  return number === undefined ? -1 : 128 + number
}
