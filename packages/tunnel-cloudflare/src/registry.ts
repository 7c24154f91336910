/**
 * Every cloudflared started by this package is tracked here until it is gone. One `'exit'`
 * listener (installed while anything is tracked, removed when nothing is) kills them
 * synchronously when the process exits normally, through `process.exit()`, or after an uncaught
 * exception. Processes killed by a signal they do not handle (or by SIGKILL) run no listener at
 * all; the watchdog supervisor covers that case. No SIGINT/SIGTERM listener is installed here, so
 * the user's signal semantics are untouched.
 */
import type { SupervisedProcess } from './supervised-process'

const tracked = new Set<SupervisedProcess>()

function onExit(): void {
  killAllTrackedChildren('SIGTERM')
}

/** Tracks `proc` until it has exited. */
export function trackChild(proc: SupervisedProcess): void {
  tracked.add(proc)
  if (tracked.size === 1) process.on('exit', onExit)
  void proc.exited.then(() => {
    tracked.delete(proc)
    if (tracked.size === 0) process.off('exit', onExit)
  })
}

/**
 * Kills every cloudflared this package started and that is still running, synchronously (safe in
 * an `'exit'` listener or a signal handler). With `SIGTERM` (the default) each watchdog forwards
 * it and escalates to SIGKILL after the grace period on its own, even if this process exits right
 * away; with `SIGKILL` cloudflared dies at once and its watchdog reaps it and exits. Returns how
 * many were signalled.
 *
 * @example
 * ```ts
 * process.on('SIGTERM', () => {
 *   killAllTrackedChildren()
 *   process.exit(143)
 * })
 * ```
 */
export function killAllTrackedChildren(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): number {
  let count = 0
  for (const proc of tracked) {
    if (proc.status !== undefined) continue
    proc.killNow(signal)
    count += 1
  }
  return count
}

/**
 * How many cloudflared processes started by this package are still running (or exiting).
 *
 * @example
 * ```ts
 * if (trackedChildCount() > 0) console.warn('tunnels still open')
 * ```
 */
export function trackedChildCount(): number {
  return tracked.size
}
