/**
 * Child processes of a benchmark that answer calls over the IPC channel: the parent forks the bench
 * file with a role name, then calls `init` (secrets travel here, never on the command line) and
 * whatever the role serves. Each role also answers `phase-begin` / `phase-end` with its CPU time and
 * event-loop delay over the phase.
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { monitorEventLoopDelay } from 'node:perf_hooks'

type Handler = (args: Record<string, unknown>) => unknown
interface Call {
  id: number
  type: string
  args: Record<string, unknown>
}
interface Reply {
  id: number
  result?: unknown
  error?: string
}

/** A forked role: `call` sends one request and resolves with the child's answer. */
export interface RolePeer {
  readonly proc: ChildProcess
  call<T = Record<string, unknown>>(type: string, args?: Record<string, unknown>): Promise<T>
  /** Ask the child to exit and wait until it has. */
  close(): Promise<void>
}

/**
 * Fork `file` with `role` as its argument (stdout/stderr inherited, this process's execArgv plus
 * `extraExecArgv`) and call its `init` with `init`.
 */
export async function forkRole(
  file: string,
  role: string,
  init: Record<string, unknown>,
  extraExecArgv: readonly string[] = [],
): Promise<{ peer: RolePeer; ready: Record<string, unknown> }> {
  const proc = fork(file, [role], {
    execArgv: [...process.execArgv, ...extraExecArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()
  let nextId = 0
  proc.on('message', (m: Reply) => {
    const w = waiting.get(m.id)
    if (!w) return
    waiting.delete(m.id)
    if (m.error !== undefined) w.reject(new Error(`${role}: ${m.error}`))
    else w.resolve(m.result)
  })
  proc.on('exit', (code, signal) => {
    for (const w of waiting.values()) w.reject(new Error(`${role} exited (${code ?? signal})`))
    waiting.clear()
  })
  const peer: RolePeer = {
    proc,
    call: <T>(type: string, args: Record<string, unknown> = {}) =>
      new Promise<T>((resolve, reject) => {
        const id = (nextId += 1)
        waiting.set(id, { resolve: resolve, reject })
        proc.send({ id, type, args } satisfies Call)
      }),
    close: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      const exited = once(proc, 'exit')
      proc.disconnect() // the child exits on disconnect
      await exited
    },
  }
  const ready = await peer.call('init', init)
  return { peer, ready }
}

/** CPU time and event-loop delay of this process between `phase-begin` and `phase-end`. */
function phaseSampler() {
  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  let cpu = process.cpuUsage()
  let t0 = performance.now()
  return {
    begin() {
      loop.reset()
      cpu = process.cpuUsage()
      t0 = performance.now()
    },
    end() {
      const c = process.cpuUsage(cpu)
      const wallMs = performance.now() - t0
      return {
        cpuPercent: ((c.user + c.system) / 1000 / wallMs) * 100,
        loopP99Ms: loop.percentile(99) / 1e6,
        loopMaxMs: loop.max / 1e6,
        rssMB: process.memoryUsage.rss() / 2 ** 20,
      }
    },
  }
}

/** The figures {@link phaseSampler} reports for one process and phase. */
export type PhaseFigures = ReturnType<ReturnType<typeof phaseSampler>['end']>

/**
 * Serve calls in a forked role until the parent disconnects. `phase-begin` / `phase-end` are added;
 * a role's own `phase-begin` / `phase-end` handlers run too and their results are merged.
 */
export function serveRole(handlers: Record<string, Handler>): void {
  const sampler = phaseSampler()
  const all: Record<string, Handler> = {
    ...handlers,
    'phase-begin': (args) => {
      sampler.begin()
      return handlers['phase-begin']?.(args) ?? {}
    },
    'phase-end': async (args) => ({
      ...sampler.end(),
      ...((await handlers['phase-end']?.(args)) as object | undefined),
    }),
  }
  process.on('disconnect', () => process.exit(0)) // never outlive the benchmark
  process.on('message', (m: Call) => {
    const handler = all[m.type]
    const reply = (r: Omit<Reply, 'id'>) => process.send?.({ id: m.id, ...r })
    if (!handler) return reply({ error: `unknown call ${m.type}` })
    Promise.resolve()
      .then(() => handler(m.args))
      .then(
        (result) => reply({ result: result ?? {} }),
        (err: unknown) => reply({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      )
  })
}

/** The phase sampler for the parent process itself (the load generator). */
export const localSampler = phaseSampler
