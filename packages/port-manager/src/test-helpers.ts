/** Helpers for this package's tests (not exported from the package, not in its tarball). */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { fileURLToPath } from 'node:url'
import { isProcessAlive } from '@taskapp/test-utils'
import { expect } from 'vitest'

const HOLDER = fileURLToPath(new URL('./fixtures/hold-port.mjs', import.meta.url))

/** A child process holding a port; `close()` kills it (and its sharer) and waits for its exit. */
export interface PortHolder extends AsyncDisposable {
  readonly child: ChildProcess
  readonly pid: number
  readonly port: number
  /** PID of the helper sharing the socket, with `sharedLingerMs`. */
  readonly sharerPid: number | undefined
  close(): Promise<void>
}

/**
 * Starts fixtures/hold-port.mjs in a child process and resolves once it listens. With
 * `sharedLingerMs`, a helper process shares the socket and keeps the port that long after the
 * holder dies.
 */
export async function holdPortInChild(
  options: { port?: number; ignoreSigterm?: boolean; sharedLingerMs?: number; timeoutMs?: number } = {},
): Promise<PortHolder> {
  const child = spawn(process.execPath, [HOLDER], {
    env: {
      ...process.env,
      HOLD_PORT: String(options.port ?? 0),
      IGNORE_SIGTERM: options.ignoreSigterm ? '1' : '0',
      HOLD_SHARED_LINGER_MS: String(options.sharedLingerMs ?? -1),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let sharerPid: number | undefined
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    if (sharerPid !== undefined) {
      try {
        process.kill(sharerPid, 'SIGKILL')
      } catch {
        // already gone
      }
      const pid = sharerPid
      // An orphaned sharer may stay a zombie for a while; isProcessAlive counts that as gone.
      await expect
        .poll(() => isProcessAlive(pid), { timeout: 10_000, message: `sharer ${pid} to exit` })
        .toBe(false)
    }
  }
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(
      () => reject(new Error('holder did not report its port in time')),
      options.timeoutMs ?? 10_000,
    )
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /PORT (\d+)(?: SHARER (\d+))?\n/.exec(out)
      if (m) {
        clearTimeout(timer)
        sharerPid = m[2] === undefined ? undefined : Number(m[2])
        resolve(Number(m[1]))
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`holder exited early with ${code}`))
    })
  }).catch(async (err: unknown) => {
    await close()
    throw err
  })
  return { child, pid: child.pid!, port, sharerPid, close, [Symbol.asyncDispose]: close }
}

/**
 * A `net.Server` that is not listening yet (for this package's `listen()`), closed when the
 * handle is disposed.
 */
export function disposableServer(): Server & AsyncDisposable {
  const server = createServer((s) => s.end()) as Server & AsyncDisposable
  server[Symbol.asyncDispose] = () =>
    new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))
  return server
}
