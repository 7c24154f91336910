/**
 * The in-process path without any HTTP bytes on the request side: each forwarded request becomes a
 * real `IncomingMessage` / `ServerResponse` pair emitted as `'request'` on the app's own server, on
 * a small per-request socket object (the relay's address, `setTimeout`, `destroy`). What the
 * response writes to that socket is read back (head, then body) and handed to the agent's
 * {@link LocalRequest} through undici's dispatch-handler interface, so the agent's code is the same
 * on every path. Backpressure: the socket acknowledges a write only while the agent is not paused,
 * so the app's `res.write()` returns `false` while the WebSocket is full; the request body is pushed
 * into `req` only as the app reads. Cancellation destroys the socket: the app's `req` is destroyed
 * with `aborted` (ECONNRESET) as Node's server does when a client goes away.
 */
import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import type { Server } from 'node:http'
import { Writable } from 'node:stream'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { LOOPBACK } from './in-memory-socket'
import type { PeerAddress } from './in-memory-socket'
import { Dechunker, HeadReader } from './response-bytes'

/** What `LocalRequest` dispatches (the subset of undici's options it uses). */
interface RequestOptions {
  method: string
  path: string
  headers: string[]
  body: Buffer | Readable | null
}

/** The socket a request and its response sit on: captures what the response writes. */
class ExchangeSocket extends Writable {
  readonly remoteAddress: string
  readonly remotePort: number
  readonly remoteFamily: string
  readonly localAddress = '127.0.0.1'
  readonly localPort = 0
  /** Readable as far as frameworks check (on-finished, body parsers); the body comes through `req`. */
  readonly readable = true

  constructor(
    private readonly exchange: Exchange,
    remote: PeerAddress,
  ) {
    super({ highWaterMark: 64 * 1024 })
    this.remoteAddress = remote.address
    this.remotePort = remote.port
    this.remoteFamily = remote.family
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.exchange.output([chunk], callback)
  }

  override _writev(chunks: { chunk: Buffer }[], callback: () => void): void {
    this.exchange.output(
      chunks.map((c) => c.chunk),
      callback,
    )
  }

  // what apps, frameworks and IncomingMessage call on `req.socket`; meaningless in memory
  pause(): this {
    return this
  }
  resume(): this {
    return this
  }
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

let supported: boolean | undefined

/**
 * Whether this Node has the `node:http` internals the request mode uses (`_addHeaderLines`, which
 * builds `headers` from raw lines as Node's parser does; `assignSocket`; the `kNeedDrain` symbol of
 * an outgoing message). Checked once; without them the agent uses the `'connection'` mode, which
 * needs nothing private. `in-process-path.test.ts` fails if a Node upgrade removes one.
 */
export function requestPairsSupported(): boolean {
  if (supported !== undefined) return supported
  const req = IncomingMessage.prototype as unknown as Record<string, unknown>
  const res = new ServerResponse(new IncomingMessage(new Socket()))
  supported =
    typeof req._addHeaderLines === 'function' &&
    typeof res.assignSocket === 'function' &&
    Object.getOwnPropertySymbols(res).some((s) => s.description === 'kNeedDrain')
  return supported
}

/** Node's own symbol for "a write returned false" on an outgoing message, found once. */
let needDrain: symbol | undefined

/** What Node's server does on its socket's 'drain': tell a response that waits for it. */
function drained(res: ServerResponse): void {
  const state = res as unknown as Record<symbol, boolean>
  needDrain ??= Object.getOwnPropertySymbols(res).find((s) => s.description === 'kNeedDrain')
  if (res.writableFinished || (needDrain !== undefined && !state[needDrain])) return
  if (needDrain !== undefined) state[needDrain] = false
  res.emit('drain')
}

const aborted = () => Object.assign(new Error('aborted'), { code: 'ECONNRESET' })

/**
 * Destroyed a tick later: 'finish' fires inside the socket's own after-write step, and a Writable
 * destroyed there builds an `ERR_STREAM_DESTROYED` (stack trace included) that nobody reads, which
 * cost about a tenth of the in-process path's CPU.
 */
const destroyLater = (socket: Writable): void => void socket.destroy()

/** One request handed to the app in memory, and the undici controller the agent drives it by. */
class Exchange implements Dispatcher.DispatchController {
  aborted = false
  paused = false
  reason: Error | null = null
  private readonly socket: ExchangeSocket
  private readonly req: IncomingMessage
  private readonly res: ServerResponse
  private readonly head = new HeadReader()
  private dechunker: Dechunker | undefined
  private started = false
  private finished = false
  private pendingAck: (() => void) | undefined

  constructor(
    private readonly host: InMemoryDispatcher,
    private readonly opts: RequestOptions,
    private readonly handler: Dispatcher.DispatchHandler,
    remote: PeerAddress,
  ) {
    this.socket = new ExchangeSocket(this, remote)
    const req = (this.req = new IncomingMessage(this.socket as never))
    req.method = opts.method
    req.url = opts.path
    req.httpVersion = '1.1'
    req.httpVersionMajor = 1
    req.httpVersionMinor = 1
    const raw = this.headerLines()
    // what Node's parser does: rawHeaders, and `headers` built from them
    ;(req as unknown as { _addHeaderLines(h: string[], n: number): void })._addHeaderLines(raw, raw.length)
    const res = (this.res = new ServerResponse(req))
    res.useChunkedEncodingByDefault = false // the body arrives as written: no framing to undo
    res.shouldKeepAlive = false
    res.assignSocket(this.socket as never)
    res.once('finish', () => this.finish())
    this.socket.on('error', () => {}) // a destroy with an error; 'close' follows and reports it
    this.socket.on('drain', () => drained(res))
    this.socket.once('close', () => this.closed())
  }

  private headerLines(): string[] {
    const { body, headers } = this.opts
    if (Buffer.isBuffer(body)) return [...headers, 'content-length', String(body.length)]
    if (body) return [...headers, 'transfer-encoding', 'chunked']
    const m = this.opts.method
    return m === 'POST' || m === 'PUT' || m === 'PATCH' ? [...headers, 'content-length', '0'] : headers
  }

  start(server: Server): void {
    this.handler.onRequestStart?.(this, {})
    if (this.aborted) return
    this.feedBody()
    server.emit('request', this.req, this.res)
  }

  private feedBody(): void {
    const { req } = this
    const body = this.opts.body
    if (!body || Buffer.isBuffer(body)) {
      if (body?.length) req.push(body)
      req.complete = true
      req.push(null)
      return
    }
    body.on('data', (c: Buffer) => {
      if (!req.push(c)) body.pause()
    })
    body.once('end', () => {
      req.complete = true
      req.push(null)
    })
    body.once('error', (err: Error) => this.abort(err))
    req._read = () => void body.resume()
  }

  /** What the response wrote to the socket: the head first, then body bytes. */
  output(chunks: Buffer[], ack: () => void): void {
    for (const chunk of chunks) {
      if (this.aborted) break
      let body = chunk
      if (!this.started) {
        const got = this.head.read(chunk)
        if (!got) continue
        if (got.head.status < 200) {
          if (got.rest.length) this.output([got.rest], () => {})
          continue
        }
        this.started = true
        if (/\bchunked\b/i.test(String(got.head.headers['transfer-encoding'] ?? '')))
          this.dechunker = new Dechunker()
        this.handler.onResponseStart?.(this, got.head.status, got.head.headers, got.head.message)
        body = got.rest
      }
      const parts = this.dechunker ? this.dechunker.decode(body) : [body]
      for (const part of parts) if (part.length && !this.aborted) this.handler.onResponseData?.(this, part)
    }
    if (this.paused && !this.aborted) this.pendingAck = ack
    else ack()
  }

  private finish(): void {
    if (this.aborted || this.finished) return
    this.finished = true
    this.host.done(this)
    this.handler.onResponseEnd?.(this, {})
    process.nextTick(destroyLater, this.socket)
  }

  /** The socket closed: by the agent (abort) or the app (destroy) before the response ended. */
  private closed(): void {
    if (!this.res.writableFinished) this.req.destroy(aborted())
    if (this.finished) return
    this.finished = true
    this.host.done(this)
    if (!this.aborted) {
      this.aborted = true
      this.reason = new Error('the app closed the connection before the response ended')
    }
    this.handler.onResponseError?.(this, this.reason!)
  }

  abort(reason: Error): void {
    if (this.aborted || this.finished) return
    this.aborted = true
    this.reason = reason
    const ack = this.pendingAck
    this.pendingAck = undefined
    ack?.()
    this.socket.destroy()
  }

  pause(): void {
    this.paused = true
  }

  resume(): void {
    this.paused = false
    const ack = this.pendingAck
    this.pendingAck = undefined
    ack?.()
  }
}

/**
 * A dispatcher (the part of undici's `Pool` the agent uses) that hands each request to `server`
 * in memory. `remote` gives the address `req.socket` reports (the relay's).
 */
export class InMemoryDispatcher {
  private readonly live = new Set<Exchange>()
  /** Requests handed over so far. */
  handed = 0

  constructor(
    private readonly server: Server,
    private readonly remote: () => PeerAddress | undefined,
  ) {}

  dispatch(opts: RequestOptions, handler: Dispatcher.DispatchHandler): boolean {
    const exchange = new Exchange(this, opts, handler, this.remote() ?? LOOPBACK)
    this.live.add(exchange)
    this.handed += 1
    exchange.start(this.server)
    return true
  }

  done(exchange: Exchange): void {
    this.live.delete(exchange)
  }

  /** Aborts every request in flight (the agent stops). */
  async destroy(): Promise<void> {
    for (const exchange of this.live) exchange.abort(new Error('the agent stopped'))
  }
}
