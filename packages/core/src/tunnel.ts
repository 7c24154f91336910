/**
 * The `TunnelBackend` contract: one declaration, structural, so a tunnel package implements it
 * without depending on `@taskapp/in-process`.
 */
import type { Server } from 'node:http'

/**
 * Where a tunnel sends traffic: the local task app.
 *
 * @example
 * ```ts
 * const target: TunnelTarget = { localUrl: 'http://127.0.0.1:8114', port: 8114, host: '127.0.0.1' }
 * ```
 */
export interface TunnelTarget {
  /** Local base URL, e.g. `http://127.0.0.1:8114` (never `0.0.0.0`). */
  readonly localUrl: string
  /** The bound port. */
  readonly port: number
  /** The host the server was asked to bind. */
  readonly host: string
  /**
   * The app's own `node:http` server, when it runs in the caller's process (`InProcessTaskApp`
   * sets it). A tunnel whose agent runs in this process may hand requests to it in memory
   * (`server.emit('request', req, res)` with an in-memory request/response pair, or
   * `server.emit('connection', socket)` with an in-memory socket) instead of connecting to
   * `localUrl` over loopback TCP; the app still sees a normal request on its own server. Tunnels
   * that run elsewhere (a child process, another machine) ignore it and use `localUrl`.
   */
  readonly server?: Server
}

/**
 * A running tunnel, as returned by {@link TunnelBackend.open}.
 *
 * @example
 * ```ts
 * await using tunnel = await backend.open(target)
 * await fetch(`${tunnel.url}/health`, { headers: { ...tunnel.headers } })
 * ```
 */
export interface OpenTunnel extends AsyncDisposable {
  /** Public base URL, without a trailing slash. */
  readonly url: string
  /**
   * Exactly the headers a caller of the public URL must send to get through the tunnel (e.g. a
   * relay worker token); absent or empty when the tunnel needs none.
   */
  readonly headers?: Readonly<Record<string, string>>
  /** Relay tunnels only: the worker token a job must be given (also inside `headers`). */
  readonly workerToken?: string
  /** Settles (always resolves) when the tunnel dies on its own or is closed. */
  readonly closed: Promise<void>
  /** Stops the tunnel; resolves when it is gone. Idempotent. */
  close(): Promise<void>
}

/**
 * Something that opens a public URL to a local server. Any object of this shape works.
 *
 * @example
 * ```ts
 * const backend: TunnelBackend = {
 *   name: 'my-tunnel',
 *   async open(target) {
 *     let close!: () => void
 *     const closed = new Promise<void>((resolve) => (close = resolve))
 *     return { url: target.localUrl, closed, close: async () => close(), [Symbol.asyncDispose]: async () => close() }
 *   },
 * }
 * await InProcessTaskApp.start({ configFactory: buildConfig, tunnel: backend })
 * ```
 */
export interface TunnelBackend {
  /** Short name for logs, e.g. `synthtunnel`, `cloudflare-quick`. */
  readonly name: string
  /** Opens a tunnel to `target`; rejects with `signal.reason` when aborted. */
  open(target: TunnelTarget, options?: { signal?: AbortSignal }): Promise<OpenTunnel>
}
