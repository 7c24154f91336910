/**
 * SIGINT/SIGTERM for `runInProcessJob`: the first signal aborts the run (the job is cancelled and
 * the task app stopped by the run itself); once the run has cleaned up, the process dies of the
 * signal as Node would have, unless it has handlers of its own. A second signal during the
 * clean-up dies at once.
 */
import { constants } from 'node:os'

type StopSignal = 'SIGINT' | 'SIGTERM'
const SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM']

/** What {@link watchProcessSignals} returns. */
export interface ProcessSignalWatch {
  /** The first signal received, if any. */
  received(): StopSignal | undefined
  /**
   * Removes the listeners; when a signal was received and the process has no other listener for
   * it, re-raises it (the process then exits with 128 + its number: 130, 143).
   */
  finish(): void
}

/** Whether the process has listeners for `sig` besides `ours`. */
function othersListen(sig: StopSignal, ours: () => void): boolean {
  return process.listeners(sig).some((listener) => listener !== ours)
}

/** Dies of `sig` the way Node would have without a listener. */
function reraise(sig: StopSignal): void {
  process.kill(process.pid, sig)
  // Only reached if the signal did not end the process (e.g. it is blocked).
  setTimeout(() => process.exit(128 + constants.signals[sig]), 1000).unref()
}

/**
 * Listens for SIGINT/SIGTERM; the first calls `onSignal` (which aborts the run). With `enabled`
 * false it listens to nothing.
 *
 * @example
 * ```ts
 * const watch = watchProcessSignals(true, (sig) => controller.abort(new Error(sig)))
 * try { await run(controller.signal) } finally { watch.finish() }
 * ```
 */
export function watchProcessSignals(
  enabled: boolean,
  onSignal: (sig: StopSignal) => void,
): ProcessSignalWatch {
  let received: StopSignal | undefined
  const listeners = new Map<StopSignal, () => void>()
  const remove = (): void => {
    for (const [sig, listener] of listeners) process.off(sig, listener)
    listeners.clear()
  }
  if (enabled) {
    for (const sig of SIGNALS) {
      const listener = (): void => {
        if (received !== undefined) {
          // A second Ctrl+C while cleaning up: stop waiting, as a user pressing it twice expects.
          if (!othersListen(sig, listener)) {
            remove()
            reraise(sig)
          }
          return
        }
        received = sig
        onSignal(sig)
      }
      listeners.set(sig, listener)
      process.on(sig, listener)
    }
  }
  return {
    received: () => received,
    finish: () => {
      const sig = received
      const ours = sig === undefined ? undefined : listeners.get(sig)
      const alone = sig !== undefined && ours !== undefined && !othersListen(sig, ours)
      remove()
      if (alone) reraise(sig)
    },
  }
}
