/**
 * Helpers of the end-to-end tests (a non-test file, so it may own timers): spawn TypeScript
 * entry points as real child processes, read their output with deadlines, poll conditions with
 * deadlines, and inspect the process table (`/proc`) for survivors.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { constants as osConstants } from 'node:os'
import { fileURLToPath } from 'node:url'
import { isPortAvailable } from '@taskapp/sdk'

/** The monorepo root. */
export const REPO_ROOT: string = join(dirname(fileURLToPath(import.meta.url)), '..')

/** How every TypeScript entry is run: Node with tsx and the source condition (no build). */
export const NODE_TS_ARGS: readonly string[] = ['--conditions=@taskapp/source', '--import', 'tsx']

/** A spawned process with its output captured. */
export interface Spawned extends AsyncDisposable {
  readonly child: ChildProcess
  readonly pid: number
  /** Everything written to stdout / stderr so far. */
  stdout(): string
  stderr(): string
  /** Settles when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Resolves with the first stdout line matching `pattern` (waits up to `timeoutMs`). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  /** Sends a signal to the process itself. */
  signal(sig: NodeJS.Signals): void
}

/**
 * Spawns `node --conditions=@taskapp/source --import tsx <file> ...args` from the repo root, as
 * the leader of a new process group (so every descendant can be found, and killed on cleanup,
 * by its group id).
 */
export function spawnTs(
  file: string,
  args: readonly string[] = [],
  options: { env?: NodeJS.ProcessEnv } = {},
): Spawned {
  return spawnProcess(process.execPath, [...NODE_TS_ARGS, file, ...args], options)
}

/** Like {@link spawnTs}, for any command. */
export function spawnProcess(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Spawned {
  const child = spawn(command, [...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  if (child.pid === undefined) throw new Error(`could not spawn ${command}`)
  const pid = child.pid
  let out = ''
  let err = ''
  const lineWaiters = new Set<() => void>()
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
    for (const wake of lineWaiters) wake()
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      for (const wake of lineWaiters) wake()
      resolve({ code, signal })
    })
  })
  let done = false
  void exited.then(() => {
    done = true
  })

  const waitForLine = (pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        for (const line of out.split('\n')) {
          const m = line.match(pattern)
          if (m) {
            finish()
            resolve(m)
            return true
          }
        }
        if (done) {
          finish()
          reject(new Error(`process exited before printing ${pattern}\nstdout:\n${out}\nstderr:\n${err}`))
          return true
        }
        return false
      }
      const timer = setTimeout(() => {
        finish()
        reject(
          new Error(`no line matching ${pattern} within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`),
        )
      }, timeoutMs)
      timer.unref()
      const wake = (): void => {
        check()
      }
      const finish = (): void => {
        clearTimeout(timer)
        lineWaiters.delete(wake)
      }
      lineWaiters.add(wake)
      check()
    })

  const dispose = async (): Promise<void> => {
    // Kill whatever is left of the group (the process and any descendant), then wait for the exit.
    for (const member of groupMembers(pid)) {
      try {
        process.kill(member, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    if (!done) {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // already gone
      }
      await exited
    }
    child.stdout?.destroy()
    child.stderr?.destroy()
  }

  return {
    child,
    pid,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLine,
    signal: (sig) => {
      child.kill(sig)
    },
    [Symbol.asyncDispose]: dispose,
  }
}

/**
 * Polls `condition` until it returns true, every `intervalMs`, for at most `timeoutMs`; rejects
 * naming `what` otherwise. The timers are unref'd.
 */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    if (await condition()) return
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise<void>((resolve) => setTimeout(resolve, intervalMs).unref())
  }
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

/** Is `pid` a live process (zombies count as gone)? */
export function isAlive(pid: number): boolean {
  const stat = readStat(pid)
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X'
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
