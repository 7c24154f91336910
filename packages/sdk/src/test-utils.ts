/**
 * Test helpers of @taskapp/sdk (not a test file: it may own servers). Not exported from the
 * package index.
 */
import { EventEmitter } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { CliIo } from './cli/output.js'

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
  override on(event: 'SIGINT' | 'SIGTERM', listener: () => void): this {
    return super.on(event, listener)
  }
  override off(event: 'SIGINT' | 'SIGTERM', listener: () => void): this {
    return super.off(event, listener)
  }
}

/** Serves a request listener on 127.0.0.1:0; disposing closes it. */
export async function serveListener(
  listener: Parameters<typeof createServer>[1],
): Promise<{ url: string; server: Server } & AsyncDisposable> {
  const server = createServer(listener)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    [Symbol.asyncDispose]: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Resolves once `predicate()` holds, polling every 10 ms for at most `timeoutMs`. */
export async function until(what: string, predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise<void>((resolve) => setTimeout(resolve, 10).unref())
  }
}
