/**
 * The structural `TunnelBackend` contract shared with `@taskapp/in-process`. It is declared
 * here again (same shape) so this package needs no dependency on `in-process`.
 */

/**
 * Where the tunnel should send traffic: the local task app.
 *
 * @example
 * ```ts
 * const target: TunnelTarget = { localUrl: 'http://127.0.0.1:8114', port: 8114, host: '127.0.0.1' }
 * ```
 */
export interface TunnelTarget {
  /** Local base URL, e.g. `http://127.0.0.1:8114`. */
  readonly localUrl: string
  /** Local port of the app. */
  readonly port: number
  /** Local host of the app. */
  readonly host: string
}

/**
 * A running tunnel.
 *
 * @example
 * ```ts
 * await using tunnel = await cloudflareQuickTunnel().open({ localUrl, port, host })
 * console.log(tunnel.url)
 * ```
 */
export interface OpenTunnel extends AsyncDisposable {
  /** Public base URL (no trailing slash). */
  readonly url: string
  /** Headers a caller of the public URL must send (none for Cloudflare tunnels). */
  readonly headers?: Readonly<Record<string, string>>
  /** Settles (always resolves) when the tunnel dies on its own or is closed. */
  readonly closed: Promise<void>
  /** Stops the tunnel; resolves only when it is gone. Idempotent. */
  close(): Promise<void>
}

/**
 * Something that can open a tunnel to a local app. Structural: any object with this shape works.
 *
 * @example
 * ```ts
 * const backend: TunnelBackend = cloudflareQuickTunnel()
 * await using tunnel = await backend.open({ localUrl: 'http://127.0.0.1:8114', port: 8114, host: '127.0.0.1' })
 * ```
 */
export interface TunnelBackend {
  /** Short name for logs, e.g. `cloudflare-quick`. */
  readonly name: string
  /** Opens a tunnel to `target`; rejects with `signal.reason` when aborted. */
  open(target: TunnelTarget, options?: { signal?: AbortSignal }): Promise<OpenTunnel>
}

/**
 * A pino-compatible logger (`logger.debug(obj, msg)`); every method is optional in practice
 * because the default is a no-op logger.
 *
 * @example
 * ```ts
 * const logger: TunnelLogger = pino()
 * ```
 */
export interface TunnelLogger {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}
