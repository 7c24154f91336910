/**
 * SIGINT/SIGTERM for the long-running CLI commands (`serve`, `relay`, `optimize`, `dev-backend`):
 * the first signal asks for a clean stop, a second one exits at once.
 */

/** Exit status after each stop signal, as a shell reports a death by it (128 + number). */
export const EXIT_ON_SIGNAL = { SIGINT: 130, SIGTERM: 143 } as const

/** A signal that stops a command. */
export type StopSignal = keyof typeof EXIT_ON_SIGNAL

/** The process hooks the commands need (the real `process` by default; tests pass their own). */
export interface StopProcess {
  on(event: StopSignal, listener: () => void): unknown
  off(event: StopSignal, listener: () => void): unknown
  /** Ends the process at once (a second signal while stopping). */
  exit(code: number): void
}

/** What {@link watchStopSignals} gives back. */
export interface StopSignals {
  /** The first signal received, if any. */
  received(): StopSignal | undefined
  /** Settles at the first signal. */
  readonly stopRequested: Promise<void>
  /** Removes the listeners. */
  dispose(): void
}

/**
 * Listens for SIGINT/SIGTERM: the first calls `onFirst` and settles `stopRequested`; a second
 * calls `onAgain` (e.g. to say so) and exits at once with {@link EXIT_ON_SIGNAL}.
 *
 * @example
 * ```ts
 * const signals = watchStopSignals(process, { onAgain: (sig) => io.stderr.write(`${sig} again\n`) })
 * try { await signals.stopRequested } finally { signals.dispose() }
 * ```
 */
export function watchStopSignals(
  proc: StopProcess,
  hooks: { onFirst?: (sig: StopSignal) => void; onAgain?: (sig: StopSignal) => void } = {},
): StopSignals {
  let received: StopSignal | undefined
  let settle!: () => void
  const stopRequested = new Promise<void>((resolve) => (settle = resolve))
  const onSignal = (sig: StopSignal) => () => {
    if (received !== undefined) {
      hooks.onAgain?.(sig)
      proc.exit(EXIT_ON_SIGNAL[sig])
      return
    }
    received = sig
    hooks.onFirst?.(sig)
    settle()
  }
  const onInt = onSignal('SIGINT')
  const onTerm = onSignal('SIGTERM')
  proc.on('SIGINT', onInt)
  proc.on('SIGTERM', onTerm)
  return {
    received: () => received,
    stopRequested,
    dispose: () => {
      proc.off('SIGINT', onInt)
      proc.off('SIGTERM', onTerm)
    },
  }
}
