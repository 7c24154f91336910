/**
 * The admin key: as `Authorization: Bearer <key>`, or as a session cookie the login form sets
 * (`HttpOnly; SameSite=Strict; Path=/admin`). The cookie holds an expiry and an HMAC of it keyed
 * by the admin key, never the key: any relay sharing the key accepts it, changing the key revokes it.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { bearer } from '../lease-api'

/** Name of the session cookie. */
export const ADMIN_COOKIE = 'taskapp_relay_admin'
/** How long a login lasts. */
export const SESSION_SECONDS = 12 * 3600

const digest = (s: string) => createHash('sha256').update(s).digest()

function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b)) // equal lengths, constant time
}

const mac = (key: string, expires: number) =>
  createHmac('sha256', key).update(`taskapp-relay-admin-session:${expires}`).digest('base64url')

/** Query parameter names that look like a credential: refused on admin paths. */
const CREDENTIAL_PARAM = /key|token|secret|auth|pass|cookie|session/i

/**
 * Whether the query of `url` carries a parameter named like a credential (`?key=`, `?token=`...):
 * an admin key never belongs in a URL (proxies, logs and browser history keep URLs).
 * @example
 * ```ts
 * credentialInQuery('/metrics?admin_key=x') // true
 * ```
 */
export function credentialInQuery(url: string): boolean {
  const q = url.indexOf('?')
  if (q === -1) return false
  for (const name of new URLSearchParams(url.slice(q + 1)).keys())
    if (CREDENTIAL_PARAM.test(name)) return true
  return false
}

/** Checks admin credentials against a relay's admin keys. */
export class AdminAuth {
  constructor(private readonly keys: readonly string[]) {}

  /** Whether any admin key is set. */
  get enabled(): boolean {
    return this.keys.length > 0
  }

  /** Whether `key` is one of the admin keys. */
  matches(key: string): boolean {
    let ok = false
    for (const k of this.keys) ok = sameSecret(k, key) || ok
    return ok
  }

  /** The admin key in `Authorization: Bearer`, or (when `cookie`) a valid session cookie. */
  allows(req: IncomingMessage, cookie: boolean): boolean {
    const key = bearer(req.headers.authorization)
    if (key !== undefined) return this.matches(key)
    return cookie && this.validCookie(req.headers.cookie)
  }

  private validCookie(header: string | undefined): boolean {
    const value = readCookie(header, ADMIN_COOKIE)
    const m = /^v1\.(\d{1,15})\.([\w-]{43})$/.exec(value ?? '')
    if (!m) return false
    const expires = Number(m[1])
    if (expires <= Date.now()) return false
    return this.keys.some((k) => sameSecret(mac(k, expires), m[2]!))
  }

  /** A `Set-Cookie` value for a new session (`secure` on HTTPS). */
  sessionCookie(key: string, secure: boolean): string {
    const expires = Date.now() + SESSION_SECONDS * 1000
    return `${ADMIN_COOKIE}=v1.${expires}.${mac(key, expires)}; ${cookieFlags(secure)}; Max-Age=${SESSION_SECONDS}`
  }
}

function cookieFlags(secure: boolean): string {
  return `Path=/admin; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`
}

/** A `Set-Cookie` value that ends the session. */
export function clearedCookie(secure: boolean): string {
  return `${ADMIN_COOKIE}=; ${cookieFlags(secure)}; Max-Age=0`
}

/** The value of cookie `name` in a `Cookie` header. */
function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/** Whether the request came over HTTPS (directly, or as a proxy in front says). */
export function isHttps(req: IncomingMessage): boolean {
  const proto = req.headers['x-forwarded-proto']
  return (req.socket as { encrypted?: boolean }).encrypted === true || proto === 'https'
}

/**
 * A POST from another site: `Sec-Fetch-Site` says so (browsers send it), or `Origin` names another
 * host (`Origin: null`, which a `no-referrer` page sends, counts as unknown, not as foreign).
 */
export function crossOrigin(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site']
  if (site !== undefined) return site !== 'same-origin' && site !== 'none'
  const origin = req.headers.origin
  if (origin === undefined || origin === 'null') return false
  try {
    return new URL(origin).host !== req.headers.host
  } catch {
    return true
  }
}
