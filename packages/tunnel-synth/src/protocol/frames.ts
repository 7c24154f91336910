/**
 * The SynthTunnel wire frames (reference: synth-ai `synth_tunnel.py` / `synth_tunnel.rs`): JSON
 * text frames, their constants and their parsers. Parsers never throw: a malformed frame yields
 * `undefined` so neither side can be crashed by its peer. Bodies (base64 or binary frames) are
 * `./codec`'s job.
 */

/** Largest body chunk in one frame (the reference's `max_body_chunk_bytes`). */
export const MAX_BODY_CHUNK_BYTES = 65_536
/** Default request deadline when `REQ_HEADERS` carries none. */
export const DEFAULT_DEADLINE_MS = 600_000
/** Default response size cap (`limits.max_response_bytes`). */
export const DEFAULT_MAX_RESPONSE_BYTES = 200_000_000
/** Default in-flight cap (`limits.max_inflight`). */
export const DEFAULT_MAX_INFLIGHT = 128
/** REST path of the lease API, below the backend URL. */
export const LEASES_PATH = '/api/v1/synthtunnel/leases'
/** WebSocket path of our relay's agent endpoint. */
export const AGENT_PATH = '/api/v1/synthtunnel/agent'
/** Header a caller sends the worker token in. */
export const WORKER_TOKEN_HEADER = 'X-SynthTunnel-Worker-Token'
/**
 * Header the agent adds to every request it forwards, so the task app can tell a relayed request
 * from a local one (its socket peer is loopback either way). Callers cannot set it: the relay and
 * the agent both drop any copy a caller sends.
 */
export const RELAY_MARKER_HEADER = 'x-synth-relay'
/** Value of {@link RELAY_MARKER_HEADER}. */
export const RELAY_MARKER_VALUE = '1'

/** Error code the agent answers with when it holds `maxInflight` requests already (ours). */
export const AGENT_CAPACITY_EXCEEDED = 'AGENT_CAPACITY_EXCEEDED'

/** Relay WebSocket close codes (ours; a reference relay may use others). */
export const CloseCode = {
  LeaseDeleted: 4000,
  LeaseExpired: 4001,
  Replaced: 4002,
  BadAttach: 4003,
  AttachTimeout: 4008,
} as const

export type HeaderPairs = [string, string][]

export interface AttachFrame {
  type: 'ATTACH'
  agent_id: string
  leases: { lease_id: string; local_target?: { host: string; port: number } }[]
  capabilities: Record<string, unknown>
}
export interface AttachAckFrame {
  type: 'ATTACH_ACK'
  agent_id?: string
  [k: string]: unknown
}
export interface ReqHeadersFrame {
  type: 'REQ_HEADERS'
  lease_id: string
  rid: string
  method: string
  path: string
  query: string
  headers: HeaderPairs
  deadline_ms: number
}
export interface ReqBodyFrame {
  type: 'REQ_BODY'
  rid: string
  chunk_b64: string
}
export interface RidFrame<T extends string> {
  type: T
  rid: string
}
export interface RespHeadersFrame {
  type: 'RESP_HEADERS'
  lease_id: string
  rid: string
  status: number
  headers: HeaderPairs
}
export interface RespBodyFrame {
  type: 'RESP_BODY'
  lease_id: string
  rid: string
  chunk_b64: string
  eof: false
}
export interface RespEndFrame {
  type: 'RESP_END'
  lease_id: string
  rid: string
}
export interface RespErrorFrame {
  type: 'RESP_ERROR'
  lease_id: string
  rid: string
  code: string
  message: string
}

/**
 * Not a wire frame: a `REQ_HEADERS` whose `rid` is usable but whose other fields are not. The agent
 * answers it with `RESP_ERROR` `BAD_REQUEST_FRAME` so the relay does not wait for its deadline.
 */
export interface InvalidRequestFrame {
  type: 'REQ_INVALID'
  lease_id: string
  rid: string
  reason: string
}

/** Frames the relay sends to the agent (plus {@link InvalidRequestFrame}, the parser's verdict). */
export type RelayFrame =
  | AttachAckFrame
  | ReqHeadersFrame
  | InvalidRequestFrame
  | ReqBodyFrame
  | RidFrame<'REQ_END'>
  | RidFrame<'CANCEL'>
/** Frames the agent sends to the relay (after ATTACH). */
export type AgentFrame = RespHeadersFrame | RespBodyFrame | RespEndFrame | RespErrorFrame

/** A parsed JSON object. */
export type Json = Record<string, unknown>

function parseObject(text: unknown): Json | undefined {
  if (typeof text !== 'string') return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined
}

function rid(value: unknown): string | undefined {
  if (typeof value === 'string' && value.length > 0 && value.length <= 256) return value
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value)
  return undefined
}

function str(value: unknown, fallback: string): string | undefined {
  if (value === undefined || value === null) return fallback
  return typeof value === 'string' ? value : undefined
}

/** Header pairs `[[name, value], ...]`; `undefined` when malformed. */
export function parseHeaderPairs(value: unknown): HeaderPairs | undefined {
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) return undefined
  const out: HeaderPairs = []
  for (const pair of value) {
    if (!Array.isArray(pair) || pair.length !== 2) return undefined
    const [name, v] = pair as unknown[]
    if (typeof name !== 'string' || typeof v !== 'string') return undefined
    out.push([name, v])
  }
  return out
}

/**
 * Check the fields of a `REQ_HEADERS` (JSON or binary): `undefined` without a usable `rid`, a
 * {@link InvalidRequestFrame} when another field is bad, else the normalized frame.
 */
export function reqHeadersFrom(f: Json): ReqHeadersFrame | InvalidRequestFrame | undefined {
  const id = rid(f.rid)
  const method = str(f.method, 'GET')
  const path = str(f.path, '/')
  const query = str(f.query, '')
  const headers = parseHeaderPairs(f.headers)
  const leaseId = str(f.lease_id, '')
  const deadline = f.deadline_ms ?? DEFAULT_DEADLINE_MS
  if (id === undefined) return undefined
  const invalid = (reason: string): InvalidRequestFrame => ({
    type: 'REQ_INVALID',
    lease_id: typeof f.lease_id === 'string' ? f.lease_id : '',
    rid: id,
    reason: `REQ_HEADERS has ${reason}`,
  })
  if (!method || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(method)) return invalid('an invalid method')
  if (path === undefined || query === undefined) return invalid('a path or query that is not a string')
  if (headers === undefined) return invalid('headers that are not [name, value] string pairs')
  if (leaseId === undefined) return invalid('a lease_id that is not a string')
  if (typeof deadline !== 'number' || !Number.isFinite(deadline) || deadline <= 0)
    return invalid('a deadline_ms that is not a positive number')
  return {
    type: 'REQ_HEADERS',
    lease_id: leaseId,
    rid: id,
    method: method.toUpperCase(),
    path,
    query: query.replace(/^\?/, ''),
    headers,
    deadline_ms: Math.min(deadline, 2_147_483_647),
  }
}

/** Parse one relay → agent frame. Returns `undefined` for anything malformed. */
export function parseRelayFrame(text: unknown): RelayFrame | undefined {
  const f = parseObject(text)
  if (!f) return undefined
  switch (f.type) {
    case 'ATTACH_ACK':
      return { ...f, type: 'ATTACH_ACK' }
    case 'REQ_HEADERS':
      return reqHeadersFrom(f)
    case 'REQ_BODY': {
      const id = rid(f.rid)
      if (id === undefined || typeof f.chunk_b64 !== 'string') return undefined
      return { type: 'REQ_BODY', rid: id, chunk_b64: f.chunk_b64 }
    }
    case 'REQ_END':
    case 'CANCEL': {
      const id = rid(f.rid)
      return id === undefined ? undefined : { type: f.type, rid: id }
    }
    default:
      return undefined
  }
}

/** Parse one agent → relay frame. Returns `undefined` for anything malformed. */
export function parseAgentFrame(text: unknown): AgentFrame | undefined {
  const f = parseObject(text)
  if (!f) return undefined
  const id = rid(f.rid)
  if (id === undefined) return undefined
  const leaseId = typeof f.lease_id === 'string' ? f.lease_id : ''
  switch (f.type) {
    case 'RESP_HEADERS': {
      const headers = parseHeaderPairs(f.headers)
      const status = f.status
      if (headers === undefined || typeof status !== 'number' || !Number.isInteger(status)) return undefined
      if (status < 200 || status > 999) return undefined
      return { type: 'RESP_HEADERS', lease_id: leaseId, rid: id, status, headers }
    }
    case 'RESP_BODY':
      if (typeof f.chunk_b64 !== 'string') return undefined
      return { type: 'RESP_BODY', lease_id: leaseId, rid: id, chunk_b64: f.chunk_b64, eof: false }
    case 'RESP_END':
      return { type: 'RESP_END', lease_id: leaseId, rid: id }
    case 'RESP_ERROR':
      return {
        type: 'RESP_ERROR',
        lease_id: leaseId,
        rid: id,
        code: typeof f.code === 'string' ? f.code : 'UNKNOWN',
        message: typeof f.message === 'string' ? f.message : '',
      }
    default:
      return undefined
  }
}

/** Parse the agent's first frame. */
export function parseAttachFrame(text: unknown): AttachFrame | undefined {
  const f = parseObject(text)
  if (!f || f.type !== 'ATTACH') return undefined
  const agentId = typeof f.agent_id === 'string' ? f.agent_id : ''
  const leases: AttachFrame['leases'] = []
  if (f.leases !== undefined) {
    if (!Array.isArray(f.leases)) return undefined
    for (const l of f.leases as unknown[]) {
      if (typeof l !== 'object' || l === null) return undefined
      const leaseId = (l as Json).lease_id
      if (typeof leaseId !== 'string') return undefined
      leases.push({ lease_id: leaseId })
    }
  }
  const caps = f.capabilities
  const capabilities = typeof caps === 'object' && caps !== null && !Array.isArray(caps) ? (caps as Json) : {}
  return { type: 'ATTACH', agent_id: agentId, leases, capabilities }
}

/** Hop-by-hop headers, never forwarded in either direction. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
])

/**
 * Lowercased header names a `Connection` header value lists (RFC 9110 §7.6.1: hop-by-hop by the
 * sender's declaration, so never forwarded), or `undefined` when it lists none.
 */
export function connectionTokens(
  value: string | readonly string[] | undefined,
): ReadonlySet<string> | undefined {
  if (value === undefined) return undefined
  let named: Set<string> | undefined
  for (const v of typeof value === 'string' ? [value] : value) {
    for (const token of v.split(',')) {
      const t = token.trim().toLowerCase()
      if (t) (named ??= new Set()).add(t)
    }
  }
  return named
}

/** {@link connectionTokens} of every `Connection` header among `pairs`. */
export function connectionTokensOf(pairs: HeaderPairs): ReadonlySet<string> | undefined {
  let values: string[] | undefined
  for (const [name, value] of pairs) {
    if (name.length === 10 && name.toLowerCase() === 'connection') (values ??= []).push(value)
  }
  return connectionTokens(values)
}

/**
 * Request headers that end at the relay: `Expect` (the relay has already answered `100 Continue`;
 * undici refuses to send it) and `X-Real-IP` (a client address only a proxy may set, never the caller).
 */
const RELAY_CONSUMED_REQUEST_HEADERS = ['expect', 'x-real-ip'] as const

/** Headers the agent drops from forwarded requests (hop-by-hop plus the newest reference list). */
export const AGENT_DROPPED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_HEADERS,
  ...RELAY_CONSUMED_REQUEST_HEADERS,
  'authorization',
  'host',
  'x-synthtunnel-worker-token',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-for',
  'forwarded',
  'content-length',
  RELAY_MARKER_HEADER,
])

/**
 * Headers the relay drops from a caller's request before REQ_HEADERS: hop-by-hop ones (and those
 * the caller's `Connection` header names), `Expect`, `X-Real-IP`, the worker token and the relay
 * marker (which only the agent sets). `Authorization` is dropped too when it carried the worker token.
 */
export const RELAY_DROPPED_CALLER_HEADERS: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_HEADERS,
  ...RELAY_CONSUMED_REQUEST_HEADERS,
  'x-synthtunnel-worker-token',
  RELAY_MARKER_HEADER,
])
