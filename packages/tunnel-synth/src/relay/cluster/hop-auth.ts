/** The internal hop's credential: an HMAC of time, method and path under the cluster secret. */
import { createHmac, timingSafeEqual } from 'node:crypto'

/** Header that carries the credential of a hop between relay nodes. */
export const HOP_AUTH_HEADER = 'x-taskapp-relay-hop'
/** Path prefix of hops: `/_cluster/s/<route_token>/...` on the node that holds the agent. */
export const HOP_PREFIX = '/_cluster'
/** How far a hop's clock may be from ours (both ways). */
const MAX_SKEW_MS = 60_000

const mac = (secret: string, ts: string, method: string, path: string): Buffer =>
  createHmac('sha256', secret).update(`${ts}\n${method}\n${path}`).digest()

/**
 * The credential for a hop `method path` now: `<epoch ms>.<base64url HMAC-SHA256>`.
 * @example
 * ```ts
 * headers[HOP_AUTH_HEADER] = signHop(secret, 'GET', '/_cluster/s/rt_x/health')
 * ```
 */
export function signHop(secret: string, method: string, path: string, now = Date.now()): string {
  const ts = String(now)
  return `${ts}.${mac(secret, ts, method, path).toString('base64url')}`
}

/**
 * Whether `credential` signs `method path` under `secret`, within a minute of `now` (constant-time compare).
 * @example
 * ```ts
 * if (!verifyHop(secret, req.method, req.url, req.headers[HOP_AUTH_HEADER])) return notFound()
 * ```
 */
export function verifyHop(
  secret: string,
  method: string,
  path: string,
  credential: string | string[] | undefined,
  now = Date.now(),
): boolean {
  if (typeof credential !== 'string') return false
  const dot = credential.indexOf('.')
  const ts = credential.slice(0, dot)
  if (dot <= 0 || !/^\d{1,16}$/.test(ts) || Math.abs(now - Number(ts)) > MAX_SKEW_MS) return false
  const given = Buffer.from(credential.slice(dot + 1), 'base64url')
  const expected = mac(secret, ts, method, path)
  return given.length === expected.length && timingSafeEqual(given, expected)
}
