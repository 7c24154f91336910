/**
 * Runs cloudflared under a tiny Node watchdog so it cannot outlive this process.
 *
 * Node has no `prctl(PR_SET_PDEATHSIG)`, so the child is started through a supervisor: a second
 * Node process (`node -e <SUPERVISOR_SOURCE> -- <cloudflared> <args...>`) connected to us by an
 * IPC channel. cloudflared writes straight into our stdout/stderr pipes (the supervisor hands
 * them down), so there is no copying. When the IPC channel ends (we exited, crashed, or were
 * SIGKILLed: the kernel closes the socket either way), the supervisor sends cloudflared SIGTERM,
 * then SIGKILL after the grace period, and exits when it is gone. SIGTERM/SIGINT/SIGHUP sent to the
 * supervisor do the same. Everything stays in our process group (`detached: false`), so a
 * group-wide kill reaches cloudflared too.
 *
 * With `wrapper` (Linux: `setpriv --pdeathsig SIGTERM --`, see `cloudflared/pdeathsig.ts`) the
 * supervisor execs the program through it, so the kernel signals it when the supervisor dies too,
 * even when we and the supervisor are both SIGKILLed. The wrapper's own exec failure
 * (`setpriv: failed to execute ...`, exit 126/127) is reported as a spawn error, like Node's.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { basename } from 'node:path'
import { createInterface } from 'node:readline'

/** The watchdog program, run with `node -e`. Plain CommonJS so it runs on any Node >= 12. */
export const SUPERVISOR_SOURCE = `'use strict'
const { spawn } = require('node:child_process')
const grace = Number(process.env.TASKAPP_SUPERVISOR_GRACE_MS)
const graceMs = Number.isFinite(grace) && grace >= 0 ? grace : 5000
const env = Object.assign({}, process.env)
delete env.TASKAPP_SUPERVISOR_GRACE_MS
delete env.NODE_OPTIONS
if (env.TASKAPP_SUPERVISOR_NODE_OPTIONS !== undefined) env.NODE_OPTIONS = env.TASKAPP_SUPERVISOR_NODE_OPTIONS
delete env.TASKAPP_SUPERVISOR_NODE_OPTIONS
const command = JSON.parse(env.TASKAPP_SUPERVISOR_WRAPPER || '[]').concat(process.argv.slice(1))
delete env.TASKAPP_SUPERVISOR_WRAPPER
let done = false, stopping = false, killTimer, child
const send = (msg, cb) => {
  if (process.connected) { try { process.send(msg, cb); return } catch (e) {} }
  if (cb) cb()
}
const finish = (code) => {
  if (done) return
  done = true
  clearTimeout(killTimer)
  process.exitCode = code
  if (process.connected) process.disconnect()
}
const stop = () => {
  if (stopping || done || !child) return
  stopping = true
  try { child.kill('SIGTERM') } catch (e) {}
  killTimer = setTimeout(() => { try { child.kill('SIGKILL') } catch (e) {} }, graceMs)
}
// Handlers first: a signal handled by Node is dispatched after this script, when child exists.
process.on('disconnect', stop)
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, stop)
child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], env, windowsHide: true })
child.on('spawn', () => send({ type: 'spawn', pid: child.pid }))
child.on('error', (err) => send({ type: 'error', code: err.code, message: err.message }, () => finish(127)))
child.on('exit', (code, signal) => send({ type: 'exit', code, signal }, () => finish(code === null ? 1 : code)))
`

/** How the supervised program ended. */
export interface SupervisedExit {
  /** Exit code, or `null` when a signal ended it. */
  readonly code: number | null
  /** Signal that ended it, or `null`. */
  readonly signal: string | null
  /** Spawn error (e.g. `EACCES`), when the program never started. */
  readonly spawnError?: { readonly code: string | undefined; readonly message: string }
}

type SupervisorMessage =
  | { type: 'spawn'; pid: number }
  | { type: 'error'; code?: string; message: string }
  | { type: 'exit'; code: number | null; signal: string | null }

/** Options of {@link spawnSupervised}. */
export interface SpawnSupervisedOptions {
  readonly file: string
  readonly args: readonly string[]
  readonly env: NodeJS.ProcessEnv
  /** Grace period the supervisor allows after SIGTERM once we are gone. */
  readonly killGraceMs: number
  /** Called with each output line (stdout and stderr). */
  readonly onLine: (line: string) => void
  /**
   * A command the program is exec'd through, e.g. `['/usr/bin/setpriv', '--pdeathsig', 'SIGTERM',
   * '--']`; its own `<name>: ...` error line with exit 126/127 counts as a spawn error. None when unset.
   */
  readonly wrapper?: readonly string[] | undefined
}

/**
 * Watches the output for the wrapper's own failure to exec the program (`setpriv: failed to execute
 * <file>: No such file or directory`, exit 127, or 126 for other errors) and turns that exit into a
 * spawn error, as Node reports one when it execs the program itself.
 */
function wrapperFailureWatch(wrapper: readonly string[] | undefined) {
  const prefix = wrapper?.[0] === undefined ? undefined : `${basename(wrapper[0])}: `
  let message: string | undefined
  return {
    observe(line: string): void {
      if (prefix !== undefined && message === undefined && line.startsWith(prefix)) message = line
    },
    classify(exit: SupervisedExit): SupervisedExit {
      const { code, signal, spawnError } = exit
      if (message === undefined || spawnError !== undefined || signal !== null) return exit
      if (code !== 126 && code !== 127) return exit
      return { code, signal, spawnError: { code: undefined, message } }
    },
  }
}

/** The watchdog's environment: the program's, plus its settings (it removes them again). */
function supervisorEnv(options: SpawnSupervisedOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...options.env, TASKAPP_SUPERVISOR_GRACE_MS: String(options.killGraceMs) }
  if (env.NODE_OPTIONS !== undefined) env.TASKAPP_SUPERVISOR_NODE_OPTIONS = env.NODE_OPTIONS
  delete env.NODE_OPTIONS
  delete env.TASKAPP_SUPERVISOR_WRAPPER
  if (options.wrapper !== undefined) env.TASKAPP_SUPERVISOR_WRAPPER = JSON.stringify(options.wrapper)
  return env
}

function isGone(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ESRCH'
}

/** A program running under the watchdog supervisor. */
export class SupervisedProcess {
  /** The supervisor process. */
  readonly supervisor: ChildProcess
  /** Settles with the program's pid once it started; rejects when it could not start. */
  readonly spawned: Promise<number>
  /** Resolves when the program and the supervisor are both gone and their output is drained. */
  readonly exited: Promise<SupervisedExit>
  #pid: number | undefined
  #status: SupervisedExit | undefined
  #childExit: SupervisedExit | undefined
  #pendingSignal: NodeJS.Signals | undefined
  #stopping: Promise<SupervisedExit> | undefined

  constructor(options: SpawnSupervisedOptions) {
    const env = supervisorEnv(options)
    const wrapperFailure = wrapperFailureWatch(options.wrapper)
    this.supervisor = spawn(
      process.execPath,
      ['-e', SUPERVISOR_SOURCE, '--', options.file, ...options.args],
      {
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        env,
        windowsHide: true,
        serialization: 'json',
      },
    )
    const sup = this.supervisor
    let resolveSpawned!: (pid: number) => void
    let rejectSpawned!: (err: unknown) => void
    this.spawned = new Promise<number>((resolve, reject) => {
      resolveSpawned = resolve
      rejectSpawned = reject
    })
    // Callers may never await `spawned`; do not let its rejection go unhandled.
    this.spawned.catch(() => {})
    for (const stream of [sup.stdout, sup.stderr]) {
      if (stream === null) continue
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line: string) => {
        wrapperFailure.observe(line)
        options.onLine(line)
      })
    }
    sup.on('message', (raw: SupervisorMessage) => {
      if (raw.type === 'spawn') {
        this.#pid = raw.pid
        resolveSpawned(raw.pid)
        if (this.#pendingSignal !== undefined) this.signal(this.#pendingSignal)
      } else if (raw.type === 'error') {
        const err = Object.assign(new Error(raw.message), { code: raw.code })
        this.#childExit = { code: null, signal: null, spawnError: { code: raw.code, message: raw.message } }
        rejectSpawned(err)
      } else if (raw.type === 'exit') {
        this.#childExit = { code: raw.code, signal: raw.signal }
      }
    })
    this.exited = new Promise<SupervisedExit>((resolve) => {
      sup.on('error', (err) => {
        // The supervisor itself could not start (no Node at process.execPath?).
        this.#childExit ??= {
          code: null,
          signal: null,
          spawnError: { code: undefined, message: err.message },
        }
        rejectSpawned(err)
        if (sup.pid === undefined) {
          this.#status = this.#childExit
          resolve(this.#status)
        }
      })
      sup.on('exit', (code, signal) => {
        // The supervisor handles TERM/INT/HUP, so only SIGKILL (or a crash) ends it by a signal:
        // then it could not stop the program, so do it here.
        if (signal !== null && this.#childExit === undefined && this.#pid !== undefined) {
          try {
            process.kill(this.#pid, 'SIGKILL')
          } catch {
            // already gone
          }
        }
        rejectSpawned(new Error(`supervisor exited (code ${String(code)}, signal ${String(signal)})`))
        this.#childExit ??= { code, signal }
      })
      // 'close' waits for the pipes, which the program holds too: both are gone by then.
      sup.on('close', () => {
        this.#status = wrapperFailure.classify(
          this.#childExit ?? { code: sup.exitCode, signal: sup.signalCode },
        )
        resolve(this.#status)
      })
    })
  }

  /** The program's pid once it started. */
  get pid(): number | undefined {
    return this.#pid
  }

  /** How it ended, once it has. */
  get status(): SupervisedExit | undefined {
    return this.#status
  }

  /** Sends a signal to the program now (sync); before it started, as soon as it does. */
  signal(sig: NodeJS.Signals): void {
    if (this.#status !== undefined || this.#childExit !== undefined) return
    if (this.#pid === undefined) {
      this.#pendingSignal = sig
      return
    }
    try {
      process.kill(this.#pid, sig)
    } catch (err) {
      if (!isGone(err)) throw err
    }
  }

  /**
   * Synchronous last-chance kill, safe in an `'exit'` listener. SIGTERM goes to the watchdog, which
   * forwards it and enforces SIGKILL after the grace period even if we are gone by then. SIGKILL goes
   * to the program only: the watchdog stays to reap it (so no zombie is left for init) and then exits.
   */
  killNow(sig: 'SIGTERM' | 'SIGKILL'): void {
    if (this.#status !== undefined) return
    try {
      if (sig === 'SIGKILL' && this.#pid !== undefined) {
        if (this.#childExit === undefined) process.kill(this.#pid, 'SIGKILL')
      } else {
        this.supervisor.kill('SIGTERM')
      }
    } catch {
      // already gone
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when everything is gone. Idempotent. */
  stop(graceMs: number): Promise<SupervisedExit> {
    this.#stopping ??= (async () => {
      if (this.#status !== undefined) return this.#status
      this.signal('SIGTERM')
      const timer = setTimeout(() => {
        if (this.#pid === undefined) this.supervisor.kill('SIGKILL')
        else this.signal('SIGKILL')
      }, graceMs)
      try {
        return await this.exited
      } finally {
        clearTimeout(timer)
      }
    })()
    return this.#stopping
  }
}

/**
 * Starts `file args...` under the watchdog supervisor.
 *
 * @example
 * ```ts
 * const proc = spawnSupervised({ file: '/usr/bin/cloudflared', args: ['--version'], env: process.env, killGraceMs: 5000, onLine: console.log })
 * await proc.exited
 * ```
 */
export function spawnSupervised(options: SpawnSupervisedOptions): SupervisedProcess {
  return new SupervisedProcess(options)
}
