/** Serves an app on 127.0.0.1 port 0 for the real-socket tests. */
import type { RequestListener, Server } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A listening server; `close()` / `await using` drops every connection and waits for the close. */
export interface Listening extends AsyncDisposable {
  readonly url: string
  readonly server: Server
  close(): Promise<void>
}

/** Listens on an ephemeral loopback port. */
export async function listenLoopback(app: RequestListener): Promise<Listening> {
  const server = createServer(app)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  let closed: Promise<void> | undefined
  const close = () => {
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
    return closed
  }
  return { url: `http://127.0.0.1:${port}`, server, close, [Symbol.asyncDispose]: close }
}
