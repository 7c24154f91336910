import { request } from 'undici'
import { SynthTunnelError, SynthTunnelErrorCode } from './errors'
import { DEFAULT_MAX_INFLIGHT, DEFAULT_MAX_RESPONSE_BYTES, LEASES_PATH } from './protocol/frames'

/** A lease as the backend (or our relay) returns it. */
export interface Lease {
  leaseId: string
  routeToken: string
  publicBaseUrl: string
  publicUrl: string
  agentConnectUrl: string
  agentToken: string
  workerToken: string
  expiresAt: Date
  limits: { maxInflight: number; maxResponseBytes: number }
}

/** Body of the lease request (reference §3.1). */
export interface CreateLeaseInput {
  backendUrl: string
  apiKey: string
  clientInstanceId: string
  localTarget: { host: string; port: number }
  requestedTtlSeconds: number
  timeoutMs: number
  signal?: AbortSignal
}

function requireString(body: Record<string, unknown>, key: string, where = body): string {
  const value = where[key]
  if (typeof value !== 'string' || value.length === 0) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.LeaseInvalid,
      `The lease response lacks "${key}". Check that backendUrl points at a SynthTunnel backend or relay.`,
    )
  }
  return value
}

function unreachable(what: string, url: string, err: unknown, signal?: AbortSignal): never {
  if (signal?.aborted) throw signal.reason
  throw new SynthTunnelError(
    SynthTunnelErrorCode.BackendUnreachable,
    `Could not reach the SynthTunnel backend at ${url} to ${what}: ${(err as Error).message}. Check backendUrl and the network.`,
    { cause: err },
  )
}

/** Sends the lease request to `url` and reads the answer; throws `BackendUnreachable` (or the abort reason). */
async function postLease(url: string, input: CreateLeaseInput): Promise<{ status: number; text: string }> {
  const signal = AbortSignal.any([
    AbortSignal.timeout(input.timeoutMs),
    ...(input.signal ? [input.signal] : []),
  ])
  try {
    const res = await request(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${input.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        client_instance_id: input.clientInstanceId,
        local_target: input.localTarget,
        requested_ttl_seconds: input.requestedTtlSeconds,
        metadata: {},
        capabilities: {},
      }),
      signal,
    })
    const status = res.statusCode
    const text = await res.body.text()
    return { status, text }
  } catch (err) {
    unreachable('create a lease', url, err, input.signal)
  }
}

/**
 * The explanation in an error body, if it has one: `detail` (problem+json, our relay's lease caps;
 * FastAPI) or `error.message` (our relay's other lease errors); control characters blanked, cut at
 * 500 characters.
 */
function bodyDetail(text: string): string | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  const body = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>
  const error = (typeof body.error === 'object' && body.error !== null ? body.error : {}) as Record<
    string,
    unknown
  >
  const detail = typeof body.detail === 'string' ? body.detail : error.message
  if (typeof detail !== 'string' || !detail.trim()) return undefined
  return detail
    .replace(/\p{Cc}+/gu, ' ') // control characters (newlines, terminal escapes) from the body
    .trim()
    .slice(0, 500)
}

/** Throws `LeaseRefused`, `UsageLimit` or `LeaseFailed` unless `status` is 2xx. */
function checkLeaseStatus(status: number, text: string): void {
  if (status === 401 || status === 403) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.LeaseRefused,
      `The SynthTunnel backend refused the lease (HTTP ${status}). Check the API key (apiKey or SYNTH_API_KEY).`,
      { status },
    )
  }
  if (status === 429) {
    const detail = bodyDetail(text)
    throw new SynthTunnelError(
      SynthTunnelErrorCode.UsageLimit,
      'The SynthTunnel backend answered HTTP 429: the usage limit is reached. Close other tunnels or wait, then retry.' +
        (detail === undefined ? '' : ` The backend says: ${detail}`),
      { status },
    )
  }
  if (status < 200 || status >= 300) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.LeaseFailed,
      `Creating a SynthTunnel lease failed with HTTP ${status}: ${text.slice(0, 200)}`,
      { status },
    )
  }
}

/** The lease response body as an object; throws `LeaseInvalid` when it is not JSON or not an object. */
function parseLeaseBody(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed !== 'object' || parsed === null) throw new TypeError('not an object')
    return parsed as Record<string, unknown>
  } catch (err) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.LeaseInvalid,
      'The lease response is not a JSON object. Check that backendUrl points at a SynthTunnel backend or relay.',
      { cause: err },
    )
  }
}

/** `v` when it is a positive finite number, else `fallback`. */
function positiveOr(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : fallback
}

/** The {@link Lease} described by a parsed response body; throws `LeaseInvalid` when a field is missing or invalid. */
function leaseFromBody(body: Record<string, unknown>): Lease {
  const connect = body.agent_connect
  if (typeof connect !== 'object' || connect === null) requireString(body, 'agent_connect')
  const connectObj = connect as Record<string, unknown>
  const expires = new Date(requireString(body, 'expires_at'))
  if (Number.isNaN(expires.getTime())) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.LeaseInvalid,
      'The lease response has an invalid "expires_at".',
    )
  }
  const limits = (typeof body.limits === 'object' && body.limits !== null ? body.limits : {}) as Record<
    string,
    unknown
  >
  return {
    leaseId: requireString(body, 'lease_id'),
    routeToken: requireString(body, 'route_token'),
    publicBaseUrl: requireString(body, 'public_base_url'),
    publicUrl: requireString(body, 'public_url').replace(/\/+$/, ''),
    agentConnectUrl: requireString(body, 'url', connectObj),
    agentToken: requireString(body, 'agent_token', connectObj),
    workerToken: requireString(body, 'worker_token'),
    expiresAt: expires,
    limits: {
      maxInflight: positiveOr(limits.max_inflight, DEFAULT_MAX_INFLIGHT),
      maxResponseBytes: positiveOr(limits.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES),
    },
  }
}

/** `POST {backend}/api/v1/synthtunnel/leases` and parse the answer; errors carry stable codes. */
export async function createLease(input: CreateLeaseInput): Promise<Lease> {
  const url = `${input.backendUrl}${LEASES_PATH}`
  const { status, text } = await postLease(url, input)
  checkLeaseStatus(status, text)
  return leaseFromBody(parseLeaseBody(text))
}

/** `DELETE {backend}/api/v1/synthtunnel/leases/{id}`. Resolves on 2xx or 404; throws otherwise. */
export async function deleteLease(input: {
  backendUrl: string
  apiKey: string
  leaseId: string
  timeoutMs: number
}): Promise<void> {
  const url = `${input.backendUrl}${LEASES_PATH}/${encodeURIComponent(input.leaseId)}`
  let status: number
  try {
    const res = await request(url, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${input.apiKey}` },
      signal: AbortSignal.timeout(input.timeoutMs),
    })
    status = res.statusCode
    await res.body.dump()
  } catch (err) {
    unreachable('delete the lease', url, err)
  }
  if ((status < 200 || status >= 300) && status !== 404) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.LeaseFailed,
      `Deleting the lease failed with HTTP ${status}.`,
      {
        status,
      },
    )
  }
}
