/** Helpers for this package's tests (not exported from the package). */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { fileURLToPath } from 'node:url'
import { pollUntil } from './poll'

const HOLDER = fileURLToPath(new URL('./fixtures/hold-port.mjs', import.meta.url))

/** A child process holding a port; `close()` kills it and waits for its exit. */
export interface PortHolder extends AsyncDisposable {
  readonly child: ChildProcess
  readonly pid: number
  readonly port: number
  close(): Promise<void>
}

/** Starts fixtures/hold-port.mjs in a child process and resolves once it listens. */
export async function holdPortInChild(
  options: { port?: number; ignoreSigterm?: boolean; timeoutMs?: number } = {},
): Promise<PortHolder> {
  const child = spawn(process.execPath, [HOLDER], {
    env: {
      ...process.env,
      HOLD_PORT: String(options.port ?? 0),
      IGNORE_SIGTERM: options.ignoreSigterm ? '1' : '0',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(
      () => reject(new Error('holder did not report its port in time')),
      options.timeoutMs ?? 10_000,
    )
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /PORT (\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
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
  return { child, pid: child.pid!, port, close, [Symbol.asyncDispose]: close }
}

/** A `net.Server` closed when the returned handle is disposed. */
export function disposableServer(): Server & AsyncDisposable {
  const server = createServer((s) => s.end()) as Server & AsyncDisposable
  server[Symbol.asyncDispose] = () =>
    new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))
  return server
}

/** Polls until `fn` is true or throws after `timeoutMs`. */
export async function waitUntil(fn: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  if (!(await pollUntil(fn, { timeoutMs }))) throw new Error(`timed out waiting for ${what}`)
}
