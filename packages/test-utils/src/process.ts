import { existsSync, readFileSync } from 'node:fs'

/**
 * Whether a process with this pid is alive right now. A zombie (exited, not yet reaped) counts
 * as gone: it holds no socket and runs no code. Reads `/proc` on Linux, else probes with
 * signal 0.
 *
 * @example
 * ```ts
 * await vi.waitFor(() => expect(isProcessAlive(pid)).toBe(false), { timeout: 10_000 })
 * ```
 */
export function isProcessAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // pid (comm) state ...; comm may hold spaces and parentheses: the state follows the last ')'.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    if (existsSync('/proc/self/stat')) return false
  }
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
