/**
 * Reading cloudflared's log lines (see /work/shared/reference/cloudflared.md, and cloudflared's
 * `cmd/cloudflared/tunnel/quick_tunnel.go`, `connection/observer.go`).
 */

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
      const shown = s.length >= 16 ? `${s.slice(0, 4)}…[redacted]` : '[redacted]'
      out = out.split(s).join(shown)
    }
    return out
  }
}
