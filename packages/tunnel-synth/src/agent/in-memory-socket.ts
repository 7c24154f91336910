/**
 * The in-process path, `'connection'` mode: when the local server runs in the agent's own
 * process, the agent's undici pool connects to it through an in-memory duplex pair instead of
 * loopback TCP. One end goes to undici (a custom `connect`), the other to the app's own
 * `http.Server` through `server.emit('connection', socket)`, so the app sees a normal request on
 * a normal server: Node's HTTP parser, its timeouts' connection tracking, `closeAllConnections()`
 * and the app's drain logic all apply. Nothing crosses the kernel.
 */
import { Duplex } from 'node:stream'
import type { Server } from 'node:http'
import type { buildConnector } from 'undici'

/** The address the app's `req.socket` reports: the relay's, as the agent's WebSocket sees it. */
export interface PeerAddress {
  readonly address: string
  readonly port: number
  readonly family: string
}

/** Reported until the agent has attached (no request can arrive before that). */
export const LOOPBACK: PeerAddress = { address: '127.0.0.1', port: 0, family: 'IPv4' }

/**
 * One end of an in-memory connection. Writes land in the peer's read buffer; a write's callback
 * waits until the peer reads (backpressure both ways); destroying one end closes the other, like
 * a TCP reset, so an aborted request reaches the app's `req` as `aborted` / `close`.
 */
export class MemorySocket extends Duplex {
  peer!: MemorySocket
  readonly remoteAddress: string
  readonly remotePort: number
  readonly remoteFamily: string
  readonly localAddress = '127.0.0.1'
  readonly localPort = 0
  /** The peer's write that filled our read buffer, acknowledged when we are read from. */
  private pendingAck: (() => void) | undefined

  constructor(remote: PeerAddress) {
    super({ allowHalfOpen: true })
    this.remoteAddress = remote.address
    this.remotePort = remote.port
    this.remoteFamily = remote.family
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.deliver([chunk], callback)
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    callback: (error?: Error | null) => void,
  ): void {
    this.deliver(
      chunks.map((c) => c.chunk),
      callback,
    )
  }

  private deliver(chunks: Buffer[], callback: () => void): void {
    const peer = this.peer
    if (peer.destroyed) return callback() // the peer is gone; 'close' follows
    let more = true
    for (const c of chunks) more = peer.push(c)
    if (more) callback()
    else peer.peerWaits(callback)
  }

  /** The peer wrote past our read buffer's high-water mark: acknowledge once we are read from. */
  private peerWaits(ack: () => void): void {
    this.pendingAck = ack
  }

  override _read(): void {
    const ack = this.pendingAck
    this.pendingAck = undefined
    ack?.()
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null)
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const ack = this.pendingAck
    this.pendingAck = undefined
    ack?.()
    if (!this.peer.destroyed) this.peer.destroy()
    callback(error)
  }

  // net.Socket methods that Node's HTTP server and undici call; they mean nothing in memory.
  setTimeout(): this {
    return this
  }
  setNoDelay(): this {
    return this
  }
  setKeepAlive(): this {
    return this
  }
  ref(): this {
    return this
  }
  unref(): this {
    return this
  }
}

/** A connected pair: `[client, server]`, each reporting the other's address. */
export function memorySocketPair(remote: PeerAddress): [MemorySocket, MemorySocket] {
  const client = new MemorySocket(LOOPBACK)
  const server = new MemorySocket(remote)
  client.peer = server
  server.peer = client
  return [client, server]
}

/**
 * An undici `connect` function that opens in-memory connections to `server`: the server end is
 * handed to `server.emit('connection', …)`, the client end to undici. `remote` gives the address
 * the app sees (the relay's); `opened` counts connections.
 */
export function inMemoryConnector(
  server: Server,
  remote: () => PeerAddress | undefined,
  opened: () => void,
): buildConnector.connector {
  return (_options, callback) => {
    const [client, serverEnd] = memorySocketPair(remote() ?? LOOPBACK)
    opened()
    server.emit('connection', serverEnd)
    // undici expects the connect callback later, as a real dial does: called synchronously, the
    // client never starts writing on the new socket
    process.nextTick(() => callback(null, client as never))
  }
}
