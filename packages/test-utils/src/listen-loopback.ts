import { createServer, Server as HttpServer } from 'node:http'
import type { RequestListener } from 'node:http'
import type { Server as NetServer } from 'node:net'

/** A server listening on 127.0.0.1 at a free port; `await using` closes it. */
export interface LoopbackServer<S extends NetServer = HttpServer> extends AsyncDisposable {
  readonly server: S
  /** Always `'127.0.0.1'`. */
  readonly host: string
  readonly port: number
  /** `http://127.0.0.1:<port>`, no trailing slash. */
  readonly url: string
  /**
   * Closes the server (an HTTP server drops its open connections first). Safe to call twice, and
   * to pass around unbound (`{ close: server.close }`).
   */
  readonly close: () => Promise<void>
}

/**
 * Listens on 127.0.0.1 port 0 (never a fixed port) and resolves once the server is bound;
 * rejects with the listen error. Given a request listener, it serves it with a new
 * `node:http` server; given a server (`node:http` or `node:net`), it listens with that one.
 *
 * @example
 * ```ts
 * await using origin = await listenLoopback((_req, res) => res.end('ok'))
 * expect(await (await fetch(`${origin.url}/health`)).text()).toBe('ok')
 * ```
 */
export async function listenLoopback(listener: RequestListener): Promise<LoopbackServer>
export async function listenLoopback<S extends NetServer>(server: S): Promise<LoopbackServer<S>>
export async function listenLoopback(
  listenerOrServer: RequestListener | NetServer,
): Promise<LoopbackServer<NetServer>> {
  const server = typeof listenerOrServer === 'function' ? createServer(listenerOrServer) : listenerOrServer
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('listenLoopback: no TCP address')
  const { port } = address
  let closing: Promise<void> | undefined
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      if (!server.listening) return resolve()
      server.close(() => resolve())
      if (server instanceof HttpServer) server.closeAllConnections()
    }))
  return {
    server,
    host: '127.0.0.1',
    port,
    url: `http://127.0.0.1:${port}`,
    close,
    [Symbol.asyncDispose]: close,
  }
}
