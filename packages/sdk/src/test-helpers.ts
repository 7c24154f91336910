/**
 * Helpers for this package's tests (not exported from the package, not in its tarball). The
 * shared ones (listenLoopback, ...) come from `@taskapp/test-utils`.
 */
import { EventEmitter } from 'node:events'
import type { CliIo } from './cli/output'

/** Captures what a command writes. */
export function captureIo(tty = false): CliIo & { out: () => string; err: () => string } {
  let out = ''
  let err = ''
  return {
    stdout: { write: (t: string) => (out += t), isTTY: tty },
    stderr: { write: (t: string) => (err += t), isTTY: tty },
    out: () => out,
    err: () => err,
  }
}

/** A stand-in for `process` in `runServe` / `runRelay`: emit 'SIGINT' / 'SIGTERM' on it. */
export class FakeProcess extends EventEmitter {
  /** Codes passed to `exit()`, in order (a real process would have ended at the first). */
  readonly exits: number[] = []
  exit(code: number): void {
    this.exits.push(code)
  }
  override on(event: 'SIGINT' | 'SIGTERM', listener: () => void): this {
    return super.on(event, listener)
  }
  override off(event: 'SIGINT' | 'SIGTERM', listener: () => void): this {
    return super.off(event, listener)
  }
}
