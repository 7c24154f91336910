/**
 * The errors `open()` and `exitError` report when cloudflared fails: each names what happened,
 * what to do, and carries the last lines cloudflared printed (secrets already redacted).
 */
import { CloudflareTunnelError, formatLines } from '../errors'
import type { SupervisedExit } from '../supervised-process'
import type { TunnelProgress } from './readiness'

/** `was killed by SIGKILL` / `exited with code 1`. */
export function exitDescription(status: SupervisedExit): string {
  if (status.signal !== null) return `was killed by ${status.signal}`
  return `exited with code ${String(status.code)}`
}

/** `TASKAPP_ERR_TUNNEL_RATE_LIMITED`: the quick-tunnel API answered 429. */
export function rateLimitError(lines: readonly string[]): CloudflareTunnelError {
  return new CloudflareTunnelError(
    'TASKAPP_ERR_TUNNEL_RATE_LIMITED',
    'Cloudflare refused a new quick tunnel: too many requests (HTTP 429). Wait 5-10 minutes before trying again, ' +
      `or use a named tunnel (cloudflareNamedTunnel). Last output:\n${formatLines(lines)}`,
    { lines: [...lines] },
  )
}

/** `TASKAPP_ERR_TUNNEL_TIMEOUT`, saying how far cloudflared got within `timeoutMs`. */
export function timeoutError(
  progress: TunnelProgress,
  timeoutMs: number,
  lines: readonly string[],
): CloudflareTunnelError {
  const { url, registered } = progress
  const what =
    url === undefined
      ? 'printed no tunnel URL'
      : !registered
        ? `printed ${url} but registered no connection with Cloudflare's edge`
        : `registered ${url} but logged no "Starting metrics server on" line (keep its log level at info)`
  return new CloudflareTunnelError(
    'TASKAPP_ERR_TUNNEL_TIMEOUT',
    `cloudflared ${what} within ${timeoutMs} ms. Check that this machine reaches Cloudflare (outbound ` +
      `UDP 7844 for QUIC; try extraArgs ['--protocol', 'http2'] behind a strict firewall), or raise ` +
      `timeoutMs. Last output:\n${formatLines(lines)}`,
    { lines: [...lines] },
  )
}

/**
 * Why cloudflared ended on its own: it could not start (`SPAWN_FAILED`), was rate limited, refused
 * the token (`TOKEN_INVALID`), or exited (`CLOUDFLARED_EXITED`, before or after being ready).
 */
export function exitError(
  status: SupervisedExit,
  file: string,
  progress: TunnelProgress,
  lines: readonly string[],
): CloudflareTunnelError {
  const details = { lines: [...lines], exitCode: status.code, exitSignal: status.signal }
  if (status.spawnError !== undefined) {
    return new CloudflareTunnelError(
      'TASKAPP_ERR_CLOUDFLARED_SPAWN_FAILED',
      `cloudflared at ${file} could not be started (${status.spawnError.message}). Check that it is an executable ` +
        'cloudflared binary for this platform.',
      { ...details, cause: status.spawnError },
    )
  }
  if (progress.rateLimited) return rateLimitError(lines)
  if (progress.tokenInvalid) {
    return new CloudflareTunnelError(
      'TASKAPP_ERR_TUNNEL_TOKEN_INVALID',
      `cloudflared refused the tunnel token (it ${exitDescription(status)}). Copy the token again from the ` +
        `Cloudflare dashboard (Zero Trust > Networks > Tunnels). Last output:\n${formatLines(lines)}`,
      details,
    )
  }
  const when =
    progress.url === undefined || !progress.registered ? 'before the tunnel was ready' : 'unexpectedly'
  return new CloudflareTunnelError(
    'TASKAPP_ERR_CLOUDFLARED_EXITED',
    `cloudflared ${exitDescription(status)} ${when}. Last output:\n${formatLines(lines)}`,
    details,
  )
}
