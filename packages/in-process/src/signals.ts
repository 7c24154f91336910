import { constants } from 'node:os'
import type { Logger } from './logger'
import { safeLog } from '@taskapp/core'
import { killTrackedTunnelChildren } from './tunnels'

/** What the shared signal handler needs from an instance. */
export interface SignalTarget {
  readonly logger: Logger
  readonly stopGraceMs: number
  /** `exiting`: the process will die of the signal once every instance stopped. */
  stopForSignal(signal: NodeJS.Signals, exiting: boolean): Promise<void>
}

type HandledSignal = 'SIGINT' | 'SIGTERM'
const SIGNALS: readonly HandledSignal[] = ['SIGINT', 'SIGTERM']

const targets = new Set<SignalTarget>()
let installed = false
let cleaning: Promise<void> | undefined

const handlers: Record<HandledSignal, () => void> = {
  SIGINT: () => onSignal('SIGINT'),
  SIGTERM: () => onSignal('SIGTERM'),
}

function install(): void {
  if (installed) return
  installed = true
  for (const sig of SIGNALS) process.on(sig, handlers[sig])
}

function uninstall(): void {
  if (!installed) return
  installed = false
  for (const sig of SIGNALS) process.off(sig, handlers[sig])
}

/** Does the process have listeners for `sig` besides ours? Then exiting is their call. */
function userHandles(sig: HandledSignal): boolean {
  return process.listeners(sig).some((listener) => listener !== handlers[sig])
}

/** Dies of `sig` as Node would have without us (the shell then reports 128 + n: 130, 143). */
function reraise(sig: HandledSignal): void {
  uninstall()
  process.kill(process.pid, sig)
  // Only reached if the signal did not end the process (e.g. it is blocked): exit with the code.
  setTimeout(() => process.exit(128 + constants.signals[sig]), 1000)
}

function onSignal(sig: HandledSignal): void {
  const leaveToUser = userHandles(sig)
  if (cleaning) {
    // A second Ctrl-C while cleaning up: give up waiting, as a user pressing it twice expects.
    if (!leaveToUser) reraise(sig)
    return
  }
  killTrackedTunnelChildren()
  const all = [...targets]
  const logger = all[0]?.logger
  if (logger)
    safeLog(logger, 'info', { signal: sig, instances: all.length }, `received ${sig}, stopping task apps`)
  const capMs = Math.max(0, ...all.map((t) => t.stopGraceMs)) + 5000
  let timer: NodeJS.Timeout | undefined
  const cap = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      if (logger)
        safeLog(logger, 'warn', { signal: sig, waitedMs: capMs }, 'task apps did not stop in time; going on')
      resolve()
    }, capMs)
    timer.unref()
  })
  cleaning = Promise.race([
    Promise.allSettled(all.map((t) => t.stopForSignal(sig, !leaveToUser))).then(() => {}),
    cap,
  ]).finally(() => {
    clearTimeout(timer)
    cleaning = undefined
    if (targets.size === 0) uninstall()
    if (!leaveToUser) reraise(sig)
  })
}

/**
 * Settles once the signal being handled now (if any) is done with: every instance stopped and,
 * when the process is to die of it, the signal re-raised. Resolves at once when none is.
 * @internal
 */
export function signalHandled(): Promise<void> {
  return cleaning ?? Promise.resolve()
}

/**
 * Adds an instance to the shared SIGINT/SIGTERM handler, installing it for the first one.
 * @internal
 */
export function registerForSignals(target: SignalTarget): void {
  targets.add(target)
  install()
}

/**
 * Removes an instance; the handler goes away with the last one.
 * @internal
 */
export function unregisterForSignals(target: SignalTarget): void {
  targets.delete(target)
  if (targets.size === 0 && !cleaning) uninstall()
}

/** Number of instances registered (for tests). @internal */
export function registeredSignalTargets(): number {
  return targets.size
}
