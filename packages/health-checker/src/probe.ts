import { Agent, request, type Dispatcher } from 'undici'
import { HealthCheckError } from './errors'

/** What {@link HealthPredicate} gets to decide on. */
export interface HealthResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  /** The body as text (at most 64 KiB are read). */
  readonly body: string
  /** The body parsed as JSON, or `undefined` when it is not JSON. */
  readonly json: unknown
}

/** Decides whether an answer means healthy. */
export type HealthPredicate = (response: HealthResponse) => boolean

/** Options shared by every probe. */
export interface ProbeOptions {
  /** Task-app key, sent as both `X-API-Key` and `Authorization: Bearer`. */
  apiKey?: string
  /** Extra request headers (they win over the key headers). */
  headers?: Readonly<Record<string, string>>
  /**
   * Healthy when this returns true.
   * @default a 2xx answer whose JSON `healthy` field, if present, is `true`
   */
  isHealthy?: HealthPredicate
  /**
   * Deadline of one request: an answer slower than this counts as a failed probe.
   * @default 2000
   */
  requestTimeoutMs?: number
  /** Abort the probe; it rejects with `signal.reason`. */
  signal?: AbortSignal
  /** undici dispatcher to send with; by default one of our own, closed when done. */
  dispatcher?: Dispatcher
}

/** One probe's outcome. */
export interface ProbeResult {
  /** Whether the answer counts as healthy. */
  readonly healthy: boolean
  /** True when the server refused the key (401/403, or synth-ai's 400 `unauthorised`). */
  readonly unauthorized: boolean
  /** HTTP status, when an answer came. */
  readonly status: number | undefined
  /** Body trimmed to 200 characters, when an answer came. */
  readonly body: string | undefined
  /** Connection error message (with its code), when no answer came. */
  readonly error: string | undefined
  /** Duration of this probe. */
  readonly elapsedMs: number
}

const MAX_BODY = 64 * 1024

/** The default predicate: 2xx, and `healthy: true` when the JSON body has that field. */
export const defaultIsHealthy: HealthPredicate = ({ status, json }) => {
  if (status < 200 || status >= 300) return false
  if (json !== null && typeof json === 'object' && 'healthy' in json) {
    return json.healthy === true
  }
  return true
}

function authErrorCode(json: unknown): unknown {
  if (json === null || typeof json !== 'object') return undefined
  const o = json as Record<string, unknown>
  const detail = o.detail as Record<string, unknown> | undefined
  const fromDetail = (detail?.error as Record<string, unknown> | undefined)?.code ?? detail?.code
  return fromDetail ?? (o.error as Record<string, unknown> | undefined)?.code
}

/** Whether an answer is an auth refusal that retrying cannot fix. */
export function isUnauthorized(status: number, json: unknown): boolean {
  if (status === 401 || status === 403) return true
  if (status !== 400) return false
  const code = authErrorCode(json)
  return code === 'unauthorised' || code === 'unauthorized'
}

/** Throws `TASKAPP_ERR_INVALID_URL` unless `url` is an absolute http(s) URL. @internal */
export function parseHealthUrl(url: string | URL): URL {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch (cause) {
    throw new HealthCheckError(
      'TASKAPP_ERR_INVALID_URL',
      `Invalid health URL ${JSON.stringify(String(url))}: expected an absolute http(s) URL such as http://127.0.0.1:8114/health.`,
      { cause },
    )
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new HealthCheckError(
      'TASKAPP_ERR_INVALID_URL',
      `Invalid health URL ${JSON.stringify(String(url))}: only http: and https: are supported.`,
    )
  }
  return parsed
}

/** Request headers for a probe: the key in both forms synth-ai task apps accept. @internal */
export function probeHeaders(
  apiKey?: string,
  extra?: Readonly<Record<string, string>>,
): Record<string, string> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (apiKey) {
    headers['x-api-key'] = apiKey
    headers.authorization = `Bearer ${apiKey}`
  }
  for (const [k, v] of Object.entries(extra ?? {})) headers[k.toLowerCase()] = v
  return headers
}

/** A dispatcher for one wait or one watcher: short keep-alive, closed by its owner. @internal */
export function createProbeDispatcher(): Agent {
  return new Agent({ keepAliveTimeout: 1000, keepAliveMaxTimeout: 1000, connections: 1, pipelining: 1 })
}

function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } }
  const code = e.code ?? e.cause?.code
  const message = e.cause?.message ?? e.message ?? String(err)
  return code && !message.includes(code) ? `${code}: ${message}` : message
}

/**
 * One probe with a ready dispatcher. Rejects only when `signal` aborts; every other failure is
 * described in the result. @internal
 */
export async function probe(
  url: URL,
  headers: Record<string, string>,
  isHealthy: HealthPredicate,
  requestTimeoutMs: number,
  dispatcher: Dispatcher,
  signal: AbortSignal | undefined,
): Promise<ProbeResult> {
  const started = performance.now()
  const perRequest = AbortSignal.timeout(requestTimeoutMs)
  const combined = signal ? AbortSignal.any([signal, perRequest]) : perRequest
  try {
    const res = await request(url, { method: 'GET', headers, dispatcher, signal: combined })
    let body = ''
    for await (const chunk of res.body) {
      body += (chunk as Buffer).toString('utf8')
      if (body.length >= MAX_BODY) {
        res.body.destroy()
        break
      }
    }
    let json: unknown
    try {
      json = body === '' ? undefined : JSON.parse(body)
    } catch {
      json = undefined
    }
    const response: HealthResponse = { status: res.statusCode, headers: res.headers, body, json }
    const unauthorized = isUnauthorized(res.statusCode, json)
    return {
      healthy: !unauthorized && isHealthy(response),
      unauthorized,
      status: res.statusCode,
      body: body.length > 200 ? `${body.slice(0, 200)}…` : body,
      error: undefined,
      elapsedMs: performance.now() - started,
    }
  } catch (err) {
    if (signal?.aborted) throw signal.reason
    const error = perRequest.aborted ? `no answer within ${requestTimeoutMs} ms` : describeError(err)
    return {
      healthy: false,
      unauthorized: false,
      status: undefined,
      body: undefined,
      error,
      elapsedMs: performance.now() - started,
    }
  }
}
