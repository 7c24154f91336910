/**
 * Frame sending with write batching: the one place that reaches into `ws` internals.
 */
import { WebSocket } from 'ws'
import type { FrameSink } from './codec'

interface CorkableSocket {
  cork(): void
  uncork(): void
  readonly destroyed: boolean
}

/**
 * The `net.Socket` under a `ws` WebSocket, or `undefined` when there is none (yet, or any more).
 *
 * Why internals: `ws` writes each frame with its own `socket.write()`, one syscall per frame, and
 * offers no way to batch them; it keeps the socket in the private field `_socket`. Corking that
 * socket for one event-loop turn turns a burst of small frames into one `writev`, which is most
 * of the relay's and agent's win under load. `corking-sender.test.ts` fails if `ws` renames or
 * replaces the field, so an upgrade cannot silently lose the batching.
 */
export function wsSocket(ws: WebSocket): CorkableSocket | undefined {
  const socket = (ws as unknown as { _socket?: unknown })._socket
  if (typeof socket !== 'object' || socket === null) return undefined
  const s = socket as Partial<CorkableSocket>
  return typeof s.cork === 'function' && typeof s.uncork === 'function' ? (s as CorkableSocket) : undefined
}

/**
 * A {@link FrameSink} over a WebSocket that batches the frames sent in one event-loop turn into one
 * write: it corks the socket on the first send and uncorks it in `setImmediate`. A frame sent while
 * the socket is not open is dropped, and its `cb` runs at once.
 *
 * @example
 * ```ts
 * const sink = corkingSender(ws)
 * sink.send(JSON.stringify(frame))
 * ```
 */
export function corkingSender(ws: WebSocket): FrameSink {
  let corked = false
  const uncork = (socket: CorkableSocket) => {
    corked = false
    socket.uncork()
  }
  const corkThisTurn = () => {
    if (corked) return
    const socket = wsSocket(ws)
    if (socket && !socket.destroyed) {
      corked = true
      socket.cork()
      setImmediate(uncork, socket)
    }
  }
  return {
    send(data: string | Buffer, cb?: () => void): void {
      if (ws.readyState !== WebSocket.OPEN) return void cb?.()
      corkThisTurn()
      ws.send(data, cb)
    },
    sendParts(head: Buffer, payload: Uint8Array, cb?: () => void): void {
      if (ws.readyState !== WebSocket.OPEN) return void cb?.()
      corkThisTurn()
      ws.send(head, { binary: true, fin: false })
      ws.send(payload, { binary: true, fin: true }, cb)
    },
    get bufferedAmount(): number {
      return ws.bufferedAmount
    },
  }
}
