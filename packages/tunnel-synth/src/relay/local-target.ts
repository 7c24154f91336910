/** The `local_target` of a lease request, checked before the relay stores it. */
import { isIPv4, isIPv6 } from 'node:net'

/** Longest host name DNS allows (RFC 1035), and the longest `local_target.host` a lease keeps. */
export const MAX_HOST_LENGTH = 253

/**
 * One DNS label: 1–63 letters, digits, `-` or `_`, not starting or ending with `-`. The `_` is
 * not RFC 1123, but Docker Compose service names (`task_app`) resolve with it.
 */
const LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/

/**
 * Whether `host` is a plausible host: at most 253 characters, and a DNS name (labels as above,
 * optionally ending with `.`), an IPv4 address, or an IPv6 literal with or without brackets.
 * @example
 * ```ts
 * isPlausibleHost('localhost') // true
 * isPlausibleHost('[::1]') // true
 * isPlausibleHost('http://x') // false
 * ```
 */
export function isPlausibleHost(host: string): boolean {
  if (host.length === 0 || host.length > MAX_HOST_LENGTH) return false
  const bracketed = host.startsWith('[') && host.endsWith(']')
  if (isIPv6(bracketed ? host.slice(1, -1) : host)) return true
  if (bracketed) return false
  if (isIPv4(host)) return true
  const name = host.endsWith('.') ? host.slice(0, -1) : host
  return name.split('.').every((label) => LABEL.test(label))
}

/** A short description of a bad value, never echoing a long one back. */
function describe(value: unknown): string {
  if (typeof value === 'string') {
    return value.length <= 64 ? JSON.stringify(value) : `a string of ${value.length} characters`
  }
  if (typeof value === 'number') return String(value)
  return value === null ? 'null' : `a value of type ${typeof value}`
}

/** A checked `local_target`, or the field that is wrong and what to send instead. */
export type LocalTargetResult =
  { ok: true; value: { host: string; port: number } | undefined } | { ok: false; detail: string }

/**
 * Checks the `local_target` of a lease request. Absent (or `null`) is allowed: the relay does not
 * route by it. Otherwise it must be `{ host, port }` with a plausible host and a port 1–65535.
 * @example
 * ```ts
 * parseLocalTarget({ host: '127.0.0.1', port: 8114 }) // { ok: true, value: { host: '127.0.0.1', port: 8114 } }
 * ```
 */
export function parseLocalTarget(raw: unknown): LocalTargetResult {
  if (raw === undefined || raw === null) return { ok: true, value: undefined }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      ok: false,
      detail: `local_target must be an object { "host": string, "port": integer }, e.g. { "host": "127.0.0.1", "port": 8114 }; got ${describe(raw)}.`,
    }
  }
  const { host, port } = raw as { host?: unknown; port?: unknown }
  if (typeof host !== 'string' || !isPlausibleHost(host)) {
    return {
      ok: false,
      detail:
        `local_target.host must be a host name (dot-separated labels of 1 to 63 letters, digits, '-' or '_', ` +
        `not starting or ending with '-'), an IPv4 address or an IPv6 literal, at most ${MAX_HOST_LENGTH} ` +
        `characters, e.g. "127.0.0.1" or "localhost"; got ${describe(host)}.`,
    }
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535) {
    return {
      ok: false,
      detail: `local_target.port must be an integer from 1 to 65535; got ${port === undefined ? 'none' : describe(port)}.`,
    }
  }
  return { ok: true, value: { host, port } }
}
