/** The relay's error answers: RFC 9457 problem+json with the reference's `TUNNEL_*` codes. */
import type { ServerResponse } from 'node:http'
import { noteProblemCode } from './admin/relay-observer'

const PROBLEM_TITLES: Record<string, string> = {
  TUNNEL_AUTH_REQUIRED: 'Worker token required',
  TUNNEL_NOT_FOUND: 'No such tunnel',
  TUNNEL_AGENT_OFFLINE: 'No agent attached',
  TUNNEL_CAPACITY_EXCEEDED: 'Tunnel at capacity',
  TUNNEL_LEASE_IN_FLIGHT_LIMIT: "Tunnel's in-flight share used up",
  TUNNEL_KEY_IN_FLIGHT_LIMIT: "API key's in-flight share used up",
  TUNNEL_REQUEST_BODY_TIMEOUT: 'Request body too slow',
  TUNNEL_TIMEOUT: 'Tunnel deadline exceeded',
  TUNNEL_PAYLOAD_TOO_LARGE: 'Payload too large',
  TUNNEL_AGENT_DISCONNECTED: 'Agent disconnected',
  TUNNEL_UPSTREAM_ERROR: 'Local server error',
  TUNNEL_BAD_AGENT_RESPONSE: 'Bad agent response',
  TUNNEL_RELAY_SHUTTING_DOWN: 'Relay shutting down',
  TUNNEL_LEASES_PER_KEY_LIMIT: 'Too many leases for this API key',
  TUNNEL_LEASES_LIMIT: 'Relay lease limit reached',
  TUNNEL_INVALID_LOCAL_TARGET: 'Invalid local_target',
  TUNNEL_ADMIN_DISABLED: 'No admin key set',
  TUNNEL_ADMIN_AUTH_REQUIRED: 'Admin key required',
  TUNNEL_ADMIN_KEY_IN_URL: 'Key in the URL refused',
  TUNNEL_NOT_READY: 'Relay not ready',
  TUNNEL_CLUSTER_UNAVAILABLE: 'Relay store unavailable',
}

/**
 * Answer with `application/problem+json`; when the response has already begun, reset it instead
 * (the caller must not take a half response for a whole one). `title` replaces the code's usual
 * title where one code covers two cases (a missing and a wrong worker token).
 * @example
 * ```ts
 * sendProblem(res, 503, 'TUNNEL_AGENT_OFFLINE', 'No agent is attached.', { 'retry-after': '1' })
 * ```
 */
export function sendProblem(
  res: ServerResponse,
  status: number,
  code: string,
  detail: string,
  extra: Record<string, string> = {},
  title: string = PROBLEM_TITLES[code] ?? code,
): void {
  noteProblemCode(res, code)
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return
  }
  const body = JSON.stringify({
    type: 'about:blank',
    title,
    status,
    code,
    detail,
  })
  res.writeHead(status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    ...extra,
  })
  res.end(body)
}

/**
 * Answer with a JSON body.
 * @example
 * ```ts
 * sendJson(res, 200, { status: 'ok' })
 * ```
 */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
