/**
 * In-memory request injection for tests: drives an Express app (any `node:http` request
 * listener) through a real `http.Server` parser and real `IncomingMessage` / `ServerResponse`
 * objects over an in-memory duplex pair. No port is opened.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type RequestListener,
  type Server,
} from 'node:http'
import { Duplex } from 'node:stream'

/** One injected request. */
export interface InjectOptions {
  method?: string
  url: string
  headers?: Record<string, string | string[]>
  /** A string or Buffer is sent as is; anything else is sent as JSON (with a JSON content type). */
  body?: unknown
  /** Aborting destroys the client side of the connection, as a disconnecting client would. */
  signal?: AbortSignal
}

/** What came back. */
export interface InjectResponse {
  status: number
  headers: IncomingHttpHeaders
  text: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test code reads arbitrary JSON
  json<T = any>(): T
}

function duplexPair(): [Duplex, Duplex] {
  const make = (getPeer: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        getPeer().push(chunk)
        callback()
      },
      final(callback) {
        getPeer().push(null)
        callback()
      },
      destroy(err, callback) {
        const peer = getPeer()
        if (!peer.destroyed) peer.destroy()
        callback(err)
      },
    })
  // eslint-disable-next-line prefer-const
  let b: Duplex
  const a = make(() => b)
  b = make(() => a)
  return [a, b]
}

const servers = new WeakMap<RequestListener, Server>()

/**
 * Sends one request to `app` in memory and resolves with the full response.
 *
 * @example
 * ```ts
 * const res = await inject(app, { url: '/health', headers: { 'x-api-key': 'k' } })
 * expect(res.status).toBe(200)
 * ```
 */
export function inject(app: RequestListener, options: InjectOptions): Promise<InjectResponse> {
  let server = servers.get(app)
  if (server === undefined) {
    server = createServer(app)
    servers.set(app, server)
  }
  const [clientSide, serverSide] = duplexPair()
  server.emit('connection', serverSide)
  const headers: Record<string, string | string[]> = { ...options.headers }
  let payload: Buffer | undefined
  if (options.body !== undefined) {
    if (typeof options.body === 'string' || Buffer.isBuffer(options.body)) payload = Buffer.from(options.body)
    else {
      payload = Buffer.from(JSON.stringify(options.body))
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
        headers['content-type'] = 'application/json'
    }
  }
  return new Promise<InjectResponse>((resolve, reject) => {
    const req = httpRequest(
      {
        method: options.method ?? 'GET',
        path: options.url,
        headers: { host: 'inject.local', ...headers },
        createConnection: () => clientSide,
        signal: options.signal,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          clientSide.destroy()
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: <T>() => JSON.parse(text) as T,
          })
        })
      },
    )
    req.on('error', (err) => {
      clientSide.destroy()
      reject(err)
    })
    req.end(payload)
  })
}
