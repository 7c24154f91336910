import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { RequestListener } from './option-types'

/** An HTTP server that can stop gracefully: drain in-flight requests, then cut them off. */
export interface DrainableServer {
  readonly server: Server
  /** Requests being answered now. */
  inFlight(): number
  /**
   * Stops accepting, closes idle keep-alive sockets at once, lets in-flight requests finish for
   * `graceMs`, then destroys what is left. Resolves when the server is closed. Idempotent.
   */
  close(graceMs: number): Promise<void>
}

/**
 * Wraps a request listener in a `node:http` server that tracks in-flight requests.
 * @internal
 */
export function createDrainableServer(listener: RequestListener): DrainableServer {
  const active = new Set<ServerResponse>()
  let draining = false
  let closing: Promise<void> | undefined

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    active.add(res)
    // Once draining, tell keep-alive clients this connection ends with this response.
    if (draining) res.shouldKeepAlive = false
    res.once('close', () => {
      active.delete(res)
      // The socket turns idle just after the response closes; close it then.
      if (draining) setImmediate(() => server.closeIdleConnections())
    })
    listener(req, res)
  })

  function close(graceMs: number): Promise<void> {
    if (closing) return closing
    draining = true
    closing = new Promise<void>((resolve) => {
      if (!server.listening) {
        resolve()
        return
      }
      const timer = setTimeout(() => server.closeAllConnections(), graceMs)
      timer.unref()
      server.close(() => {
        clearTimeout(timer)
        resolve()
      })
      for (const res of active) {
        if (!res.headersSent) res.shouldKeepAlive = false
      }
      server.closeIdleConnections()
    })
    return closing
  }

  return { server, inFlight: () => active.size, close }
}
