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

  constructor(code: CloudflareTunnelErrorCode, message: string, details: CloudflareTunnelErrorDetails = {}) {
    super(code, message, details)
    this.lines = details.lines ?? []
    this.exitCode = details.exitCode
    this.exitSignal = details.exitSignal
  }
}

/** Formats output lines for an error message: indented, at most `max` of them. */
export function formatLines(lines: readonly string[], max = 15): string {
  if (lines.length === 0) return '  (no output)'
  const shown = lines.slice(-max)
  return shown.map((l) => `  | ${l}`).join('\n')
}
