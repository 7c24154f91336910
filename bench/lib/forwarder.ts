/**
 * The baseline of the tunnel benchmark: a minimal TCP forwarder, as `ssh -R` or any byte pipe
 * would be. Each accepted connection gets its own connection to the target and bytes are piped
 * both ways, untouched; either side closing or failing closes both.
 */
import { connect, createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { once } from 'node:events'

/** Listens on 127.0.0.1:0 and forwards every connection to 127.0.0.1:`targetPort`. */
export async function startForwarder(targetPort: number): Promise<{ server: Server; port: number }> {
  const server = createServer({ noDelay: true }, (caller: Socket) => {
    const upstream = connect({ port: targetPort, host: '127.0.0.1', noDelay: true })
    const close = () => {
      caller.destroy()
      upstream.destroy()
    }
    caller.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
    caller.pipe(upstream)
    upstream.pipe(caller)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as { port: number }).port }
}
