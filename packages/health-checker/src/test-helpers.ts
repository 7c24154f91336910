/** Helpers for this package's tests (not exported from the package, not in its tarball). */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { listenLoopback } from '@taskapp/test-utils'

/** A started loopback HTTP server that records requests; disposed with `await using`. */
export interface TestServer extends AsyncDisposable {
  readonly server: Server
  /** The `/health` URL of the server. */
  readonly url: string
  readonly requests: IncomingMessage[]
  close(): Promise<void>
}

/** Starts `handler` on 127.0.0.1 port 0; `index` counts the requests from 0. */
export async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse, index: number) => void,
): Promise<TestServer> {
  const requests: IncomingMessage[] = []
  const loopback = await listenLoopback((req, res) => {
    requests.push(req)
    handler(req, res, requests.length - 1)
  })
  return {
    server: loopback.server,
    url: `${loopback.url}/health`,
    requests,
    close: loopback.close,
    [Symbol.asyncDispose]: loopback.close,
  }
}

/** Sends a JSON answer. */
export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}
