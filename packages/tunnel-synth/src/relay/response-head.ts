/**
 * The head of a response the relay writes to a caller, built from an agent's `RESP_HEADERS`. The
 * relay owns the framing of what it sends: an agent's headers never decide where one response ends
 * and the next begins on a caller's keep-alive connection.
 */
import { HOP_BY_HOP_HEADERS, connectionTokensOf } from '../protocol/frames'
import type { HeaderPairs } from '../protocol/frames'

/** What the relay writes: the headers (flat name/value list) and the body length it will enforce. */
export interface ResponseHead {
  headers: string[]
  /** The agent's `Content-Length`, checked; `undefined`: the relay frames the body itself (chunked). */
  contentLength: number | undefined
}

/** A decimal `Content-Length` a client cannot read two ways (not `1e1`, `5abc`, `-1`, `5, 5`). */
const DECIMAL = /^\d{1,15}$/
/** Node's own checks of a header name (an RFC 9110 token) and value, made before `writeHead`. */
const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/

/**
 * Filter and check an agent's response headers: drop hop-by-hop ones, those the agent's
 * `Connection` header names, and `Set-Cookie` unless `allowSetCookie`; refuse (a string saying why)
 * more than one `Content-Length`, one that is not a plain decimal, or one beside
 * `Transfer-Encoding`, and a header Node would refuse (name not a token, value with control
 * characters): `writeHead` throwing half way would leave the response unfit even for a 502.
 * The `Content-Length` kept is written back in canonical form.
 * @example
 * ```ts
 * const head = responseHead([['content-length', '5']], false) // { headers: ['content-length', '5'], contentLength: 5 }
 * ```
 */
export function responseHead(pairs: HeaderPairs, allowSetCookie: boolean): ResponseHead | string {
  const named = connectionTokensOf(pairs)
  const headers: string[] = []
  let contentLength: number | undefined
  let transferEncoding = false
  for (const [name, value] of pairs) {
    const lower = name.toLowerCase()
    if (lower === 'transfer-encoding') transferEncoding = true
    if (HOP_BY_HOP_HEADERS.has(lower) || named?.has(lower)) continue
    if (lower === 'content-length') {
      if (contentLength !== undefined) return 'more than one Content-Length'
      const v = value.trim()
      if (!DECIMAL.test(v))
        return `a Content-Length that is not a decimal length (${JSON.stringify(value.slice(0, 32))})`
      contentLength = Number(v)
      continue
    }
    if (lower === 'set-cookie' && !allowSetCookie) continue
    if (!TOKEN.test(name)) return `a header name that is not a token (${JSON.stringify(name.slice(0, 32))})`
    if (INVALID_VALUE.test(value)) return `a value of ${name} with characters a header cannot carry`
    headers.push(name, value)
  }
  if (contentLength === undefined) return { headers, contentLength }
  if (transferEncoding) return 'Transfer-Encoding together with Content-Length'
  headers.push('content-length', String(contentLength))
  return { headers, contentLength }
}
