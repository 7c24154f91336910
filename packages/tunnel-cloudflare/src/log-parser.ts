/**
 * Reading cloudflared's log lines (see /work/shared/reference/cloudflared.md, and cloudflared's
 * `cmd/cloudflared/tunnel/quick_tunnel.go`, `connection/observer.go`).
 */
import { redact } from '@taskapp/core'

/**
 * What one line of cloudflared output tells us.
 *
 * @example
 * ```ts
 * const { url, registered } = parseCloudflaredLine(line)
 * ```
 */
export interface ParsedLine {
  /** `DBG|INF|WRN|ERR|FTL|PNC`, or `undefined` for a plain line (CLI error, panic, usage). */
  readonly level: string | undefined
  /** The quick-tunnel URL when this line is the URL row of the banner box. */
  readonly url: string | undefined
  /** A tunnel connection was registered with the edge. */
  readonly registered: boolean
  /** The quick-tunnel API answered 429 (rate limited). */
  readonly rateLimited: boolean
  /** The named-tunnel token was refused. */
  readonly tokenInvalid: boolean
}

const LEVELS = new Set(['DBG', 'INF', 'WRN', 'ERR', 'FTL', 'PNC'])
// Console writer: `<RFC3339> <LVL> <message> <fields>`.
const CONSOLE_LINE = /^\d{4}-\d{2}-\d{2}T\S+\s+([A-Z]{3})\s?(.*)$/
// Box row: `|  https://<words>.trycloudflare.com   |`; the message may also be the bare URL.
const URL_ROW = /^\|?\s*(https:\/\/([a-z0-9-]+)\.trycloudflare\.com)\/?\s*\|?$/i
const REGISTERED = [/\bRegistered tunnel connection\b/, /\bConnection \S+ registered\b/]
const RATE_LIMIT = [/\b429\b/, /Too Many Requests/i, /error code: 1015/, /rate.?limit/i]

function splitLevel(line: string): { level: string | undefined; message: string } {
  const trimmed = line.trim()
  if (trimmed.startsWith('{')) {
    try {
      const obj = JSON.parse(trimmed) as { level?: unknown; message?: unknown }
      const level = typeof obj.level === 'string' ? obj.level.toUpperCase().slice(0, 3) : undefined
      const map: Record<string, string> = {
        DEB: 'DBG',
        INF: 'INF',
        WAR: 'WRN',
        ERR: 'ERR',
        FAT: 'FTL',
        PAN: 'PNC',
      }
      return {
        level: level === undefined ? undefined : (map[level] ?? level),
        message: typeof obj.message === 'string' ? obj.message : trimmed,
      }
    } catch {
      // Not JSON after all: fall through to the console format.
    }
  }
  const m = CONSOLE_LINE.exec(trimmed)
  if (m?.[1] !== undefined && LEVELS.has(m[1])) return { level: m[1], message: (m[2] ?? '').trim() }
  return { level: undefined, message: trimmed }
}

/**
 * Parses one line of cloudflared output (console or `--output json` format).
 *
 * @example
 * ```ts
 * parseCloudflaredLine('2026-01-01T00:00:00Z INF |  https://a-b.trycloudflare.com  |').url
 * // 'https://a-b.trycloudflare.com'
 * ```
 */
export function parseCloudflaredLine(line: string): ParsedLine {
  const { level, message } = splitLevel(line)
  const urlMatch = level === 'INF' || level === undefined ? URL_ROW.exec(message) : null
  const url =
    urlMatch?.[2] !== undefined && urlMatch[2].toLowerCase() !== 'api'
      ? urlMatch[1]?.toLowerCase()
      : undefined
  const registered = level === 'INF' && REGISTERED.some((r) => r.test(message))
  const rateLimited =
    (level === 'ERR' || level === 'FTL' || level === undefined) &&
    /quick ?tunnel/i.test(message) &&
    RATE_LIMIT.some((r) => r.test(message))
  const tokenInvalid = level === undefined && /token is not valid/i.test(message)
  return { level, url, registered, rateLimited, tokenInvalid }
}

// `Starting metrics server on 127.0.0.1:20241/metrics` (metrics/metrics.go logs the listener's
// real address, so with `--metrics 127.0.0.1:0` it names the port the kernel chose). IPv6 is bracketed.
const METRICS_LINE = /\bStarting metrics server on (\[[0-9a-f:.]+\]|[^\s:/[\]]+):(\d{1,5})\/metrics\b/i

/**
 * The `host:port` cloudflared's metrics server listens on, when `line` is its
 * `Starting metrics server on <addr>/metrics` line (console or `--output json` format). An
 * unspecified host (`0.0.0.0`, `[::]`) is reported as the loopback address of its family.
 * Internal: not exported from the package.
 *
 * @example
 * ```ts
 * parseMetricsAddress('2026-01-01T00:00:00Z INF Starting metrics server on 127.0.0.1:43121/metrics')
 * // '127.0.0.1:43121'
 * ```
 */
export function parseMetricsAddress(line: string): string | undefined {
  const { level, message } = splitLevel(line)
  if (level !== 'INF') return undefined
  const m = METRICS_LINE.exec(message)
  const port = Number(m?.[2])
  if (m?.[1] === undefined || !(port > 0 && port <= 65_535)) return undefined
  const host = m[1] === '0.0.0.0' ? '127.0.0.1' : m[1] === '[::]' ? '[::1]' : m[1]
  return `${host}:${port}`
}

/**
 * Returns a function that replaces every occurrence of the given secrets with a short prefix.
 *
 * @example
 * ```ts
 * redactor(['eyJhIjoi...'])('token=eyJhIjoi...') // 'token=eyJh…[redacted]'
 * ```
 */
export function redactor(secrets: readonly (string | undefined)[]): (text: string) => string {
  const list = secrets.filter((s): s is string => typeof s === 'string' && s.length > 0)
  if (list.length === 0) return (text) => text
  return (text) => {
    let out = text
    for (const s of list) {
      // Long secrets keep redact()'s short prefix, so a log still tells two tokens apart.
      const shown = s.length >= 16 ? `${redact(s)}[redacted]` : '[redacted]'
      out = out.split(s).join(shown)
    }
    return out
  }
}
