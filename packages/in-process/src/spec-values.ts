/**
 * The value checks of the tunnel spec: strings, URLs and the `install` setting, each refused
 * with `TASKAPP_ERR_INVALID_OPTIONS` naming the option (`tunnel.relayUrl`, ...) on the error.
 */
import { InProcessError } from './errors'
import type { InProcessErrorDetails } from './errors'

/**
 * What `install` may give instead of `true`: a pinned release and its checksum, or a mirror
 * (the options of tunnel-cloudflare's `installCloudflared`).
 *
 * @example
 * ```ts
 * const install: CloudflaredInstallSpec = { version: '2026.8.2', sha256: '…64 hex…' }
 * ```
 */
export interface CloudflaredInstallSpec {
  /** Release tag, e.g. `2026.8.2`. @default 'latest' */
  readonly version?: string
  /** Expected SHA-256 (64 hex) of the download. @default read from `checksumUrl` */
  readonly sha256?: string
  /** Release download base, e.g. a mirror. @default 'https://github.com/cloudflare/cloudflared/releases' */
  readonly baseUrl?: string
  /** Where the checksum is read from (release JSON or a `sha256sum` file). @default the GitHub release */
  readonly checksumUrl?: string
}

/** The keys of {@link CloudflaredInstallSpec}. */
const INSTALL_KEYS = ['version', 'sha256', 'baseUrl', 'checksumUrl'] as const

/** The facts an invalid-option error carries. */
export type OptionFacts = Pick<InProcessErrorDetails, 'option' | 'env' | 'expected' | 'cause'>

/** A `TASKAPP_ERR_INVALID_OPTIONS` error with its facts. */
export function invalid(message: string, facts: OptionFacts = {}): InProcessError {
  return new InProcessError('TASKAPP_ERR_INVALID_OPTIONS', message, facts)
}

/** A value as shown in a message (strings quoted, objects not spelled out). */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === null || typeof value !== 'object') return String(value)
  return Array.isArray(value) ? 'an array' : 'an object'
}

/** An environment variable; blank counts as unset. */
export function envString(name: string): string | undefined {
  const value = process.env[name]
  return value === undefined || value.trim() === '' ? undefined : value
}

/** A spec key that must be a non-empty string when set. */
export function specString(spec: Record<string, unknown>, key: string, where: string): string | undefined {
  const value = spec[key]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.trim() === '') {
    const expected = 'a non-empty string'
    throw invalid(`Invalid ${where}.${key} ${show(value)}: expected ${expected}.`, {
      option: `${where}.${key}`,
      expected,
    })
  }
  return value
}

/**
 * An http(s) URL, trailing slashes removed. `label` names it in the message: the option, or the
 * environment variable it came from; `facts.option` is always the option.
 */
export function httpUrl(label: string, value: string, facts: OptionFacts): string {
  const expected = 'an absolute http:// or https:// URL'
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw invalid(`Invalid ${label} ${JSON.stringify(value)}: expected an absolute http(s) URL.`, {
      ...facts,
      expected,
    })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`Invalid ${label} ${JSON.stringify(value)}: expected an http:// or https:// URL.`, {
      ...facts,
      expected,
    })
  }
  return value.replace(/\/+$/, '')
}

/** `install`: absent or `false` → false; `true`; or a {@link CloudflaredInstallSpec}, checked. */
export function specInstall(spec: Record<string, unknown>, where: string): boolean | CloudflaredInstallSpec {
  const value = spec.install
  const option = `${where}.install`
  const expected = 'true, false, or { version, sha256, baseUrl, checksumUrl }'
  if (value === undefined) return false
  if (typeof value === 'boolean') return value
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`Invalid ${option} ${show(value)}: expected ${expected}.`, { option, expected })
  }
  const given = value as Record<string, unknown>
  const extra = Object.keys(given).filter((key) => !(INSTALL_KEYS as readonly string[]).includes(key))
  if (extra.length > 0) {
    throw invalid(`Unknown ${option} key ${extra.join(', ')}: it takes ${INSTALL_KEYS.join(', ')}.`, {
      option,
      expected,
    })
  }
  const out: Record<string, string> = {}
  for (const key of INSTALL_KEYS) {
    const v = specString(given, key, option)
    if (v === undefined) continue
    if (key === 'sha256' && !/^[0-9a-f]{64}$/i.test(v)) {
      throw invalid(`Invalid ${option}.sha256 ${show(v)}: expected 64 hex characters.`, {
        option: `${option}.sha256`,
        expected: '64 hex characters',
      })
    }
    out[key] =
      key === 'baseUrl' || key === 'checksumUrl'
        ? httpUrl(`${option}.${key}`, v, { option: `${option}.${key}` })
        : v
  }
  return out
}
