/** The head of a caller's request as the relay forwards it in `REQ_HEADERS`. */
import type { IncomingMessage } from 'node:http'
import { RELAY_DROPPED_CALLER_HEADERS, connectionTokens } from '../protocol/frames'
import type { HeaderPairs } from '../protocol/frames'

/**
 * The caller's headers minus hop-by-hop ones (with those its `Connection` header names), `Expect`,
 * `X-Real-IP`, the relay marker and the worker token (in either header).
 * @example
 * ```ts
 * const headers = forwardedHeaders(req, true) // [['content-type', 'application/json'], ...]
 * ```
 */
export function forwardedHeaders(req: IncomingMessage, dropAuthorization: boolean): HeaderPairs {
  const raw = req.rawHeaders
  const named = connectionTokens(req.headers.connection)
  const headers: HeaderPairs = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    const lower = name.toLowerCase()
    if (RELAY_DROPPED_CALLER_HEADERS.has(lower) || named?.has(lower)) continue
    if (lower === 'authorization' && dropAuthorization) continue
    headers.push([name, raw[i + 1]!])
  }
  return headers
}
