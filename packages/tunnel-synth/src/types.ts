/**
 * The structural `TunnelBackend` contract (owned by `@taskapp/in-process`), restated here so this
 * package needs no dependency on it.
 */

/** Where the local server listens. */
export interface TunnelTarget {
  /** e.g. `http://127.0.0.1:8114` */
  localUrl: string
  port: number
  host: string
}

/** A tunnel backend: opens a public URL for a local server. */
export interface TunnelBackend {
  readonly name: string
  open(target: TunnelTarget, options?: { signal?: AbortSignal }): Promise<OpenTunnel>
}

/** An open tunnel. `close()` is idempotent; `closed` settles when it dies on its own or is closed. */
export interface OpenTunnel extends AsyncDisposable {
  /** Public base URL. */
  readonly url: string
  /** Headers a caller must send through the tunnel (here the worker token). */
  readonly headers?: Readonly<Record<string, string>>
  readonly closed: Promise<void>
  close(): Promise<void>
}

/**
 * A pino-compatible logger (object first, message second). When it has pino's
 * `isLevelEnabled(level)` and that says `false` for `'debug'`, per-request debug lines are not
 * even built (they cost CPU on the hot path).
 */
export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
  /** pino's level check; absent means every level is wanted. */
  isLevelEnabled?(level: string): boolean
}

/** A logger that drops everything (the default). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  isLevelEnabled: () => false,
}

/** Whether `logger` wants debug lines (so hot paths can skip building them). */
export function debugEnabled(logger: Logger): boolean {
  return logger.isLevelEnabled?.('debug') ?? true
}

/** Redact a secret to a short prefix for logs: `wt_AbC…`. */
export function redact(secret: string | undefined): string {
  if (!secret) return '<unset>'
  return `${secret.slice(0, 6)}…`
}
