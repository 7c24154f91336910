import { TaskappError } from '@taskapp/core'
/**
 * Every stable error code this package throws (see the README's Errors table).
 *
 * @example
 * ```ts
 * if (err instanceof CloudflareTunnelError && err.code === 'TASKAPP_ERR_TUNNEL_TIMEOUT') retry()
 * ```
 */
export const CloudflareTunnelErrorCode = {
  InvalidOptions: 'TASKAPP_ERR_INVALID_OPTIONS',
  CloudflaredNotFound: 'TASKAPP_ERR_CLOUDFLARED_NOT_FOUND',
  CloudflaredSpawnFailed: 'TASKAPP_ERR_CLOUDFLARED_SPAWN_FAILED',
  CloudflaredExited: 'TASKAPP_ERR_CLOUDFLARED_EXITED',
  TunnelTimeout: 'TASKAPP_ERR_TUNNEL_TIMEOUT',
  TunnelRateLimited: 'TASKAPP_ERR_TUNNEL_RATE_LIMITED',
  TunnelTokenInvalid: 'TASKAPP_ERR_TUNNEL_TOKEN_INVALID',
  TunnelVerifyFailed: 'TASKAPP_ERR_TUNNEL_VERIFY_FAILED',
  InstallUnsupported: 'TASKAPP_ERR_INSTALL_UNSUPPORTED',
  InstallDownload: 'TASKAPP_ERR_INSTALL_DOWNLOAD',
  InstallChecksum: 'TASKAPP_ERR_INSTALL_CHECKSUM',
} as const

/** One of the {@link CloudflareTunnelErrorCode} values. */
export type CloudflareTunnelErrorCode =
  (typeof CloudflareTunnelErrorCode)[keyof typeof CloudflareTunnelErrorCode]

/**
 * Extra facts an error can carry.
 *
 * @example
 * ```ts
 * new CloudflareTunnelError('TASKAPP_ERR_CLOUDFLARED_EXITED', 'exited', { exitCode: 1, lines })
 * ```
 */
export interface CloudflareTunnelErrorDetails {
  /** The underlying error. */
  cause?: unknown
  /** The last lines cloudflared printed (secrets redacted). */
  lines?: readonly string[]
  /** cloudflared's exit code, when it exited. */
  exitCode?: number | null
  /** The signal that ended cloudflared, when one did. */
  exitSignal?: string | null
  /** `TASKAPP_ERR_CLOUDFLARED_NOT_FOUND` after a search: the install cache looked in (where `install: true` puts a copy). */
  installDir?: string
  /** `TASKAPP_ERR_CLOUDFLARED_NOT_FOUND` for an explicit path: the path that is not an executable file. */
  cloudflaredPath?: string
  /** Where that path came from: the `cloudflaredPath` option, or the `CLOUDFLARED_PATH` variable. */
  pathSource?: 'option' | 'env'
}

/**
 * The one error family of `@taskapp/tunnel-cloudflare`. Match on `err.code`.
 *
 * @example
 * ```ts
 * try {
 *   await cloudflareQuickTunnel().open(target)
 * } catch (err) {
 *   if (err instanceof CloudflareTunnelError && err.code === 'TASKAPP_ERR_TUNNEL_RATE_LIMITED') retryLater()
 * }
 * ```
 */
export class CloudflareTunnelError extends TaskappError<CloudflareTunnelErrorCode> {
  static override readonly family: string = 'CloudflareTunnelError'
  override readonly name = 'CloudflareTunnelError'
  /** The last lines cloudflared printed (secrets redacted); empty when not relevant. */
  readonly lines: readonly string[]
  /** cloudflared's exit code, when it exited. */
  readonly exitCode: number | null | undefined
  /** The signal that ended cloudflared, when one did. */
  readonly exitSignal: string | null | undefined
  /**
   * `TASKAPP_ERR_CLOUDFLARED_NOT_FOUND` after a search (option, `CLOUDFLARED_PATH`, `PATH`, cache):
   * the install cache looked in. A caller can word the fix in its own terms from this (the
   * `taskapp` CLI says `--install-cloudflared`, `InProcessTaskApp` says `tunnel: { install: true }`).
   */
  readonly installDir: string | undefined
  /** `TASKAPP_ERR_CLOUDFLARED_NOT_FOUND` for an explicit path: the path that is not an executable file. */
  readonly cloudflaredPath: string | undefined
  /** Where {@link CloudflareTunnelError.cloudflaredPath} came from: the option, or `CLOUDFLARED_PATH`. */
  readonly pathSource: 'option' | 'env' | undefined

  constructor(code: CloudflareTunnelErrorCode, message: string, details: CloudflareTunnelErrorDetails = {}) {
    super(code, message, details)
    this.lines = details.lines ?? []
    this.exitCode = details.exitCode
    this.exitSignal = details.exitSignal
    this.installDir = details.installDir
    this.cloudflaredPath = details.cloudflaredPath
    this.pathSource = details.pathSource
  }
}

/** Formats output lines for an error message: indented, at most `max` of them. */
export function formatLines(lines: readonly string[], max = 15): string {
  if (lines.length === 0) return '  (no output)'
  const shown = lines.slice(-max)
  return shown.map((l) => `  | ${l}`).join('\n')
}
