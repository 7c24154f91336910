/**
 * HTTP to the job backend over undici: the auth headers every call carries, per-request deadlines,
 * and the mapping of failures to {@link JobsError} codes.
 */
import { request, type Dispatcher } from 'undici'
import { messageOf } from '@taskapp/core'
import { JobsError, JobsErrorCode } from '../errors'

/** What every request needs. */
export interface HttpContext {
  /** Backend root without `/api` (`https://api.usesynth.ai`). */
  readonly root: string
  /** The Synth API key, sent as `Authorization: Bearer` and `X-API-Key`. */
  readonly apiKey: string
  readonly dispatcher: Dispatcher
  /** Deadline for the answer's headers, and between body chunks of a JSON reply. */
  readonly requestTimeoutMs: number
  /** Deadline between chunks of an event stream. */
  readonly streamIdleTimeoutMs: number
}

/** One request. */
export interface SendInput {
  readonly method: 'GET' | 'POST' | 'PATCH'
  readonly path: string
  readonly query?: Readonly<Record<string, string | number | undefined>>
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
  readonly signal?: AbortSignal | undefined
  /** What the call does, for messages ("create the job"). */
  readonly what: string
  readonly jobId?: string | undefined
}

/** A JSON reply: status, parsed body (undefined when not JSON) and the raw text. */
export interface JsonReply {
  readonly status: number
  readonly json: unknown
  readonly text: string
}

/** The full URL of `path` with `query` (undefined values left out). */
export function urlOf(ctx: HttpContext, path: string, query: SendInput['query'] = {}): string {
  const url = new URL(`${ctx.root}${path}`)
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v))
  return url.href
}

/** The auth headers: both forms of the Synth API key (none when the key is empty). */
export function authHeaders(apiKey: string): Record<string, string> {
  return apiKey === '' ? {} : { authorization: `Bearer ${apiKey}`, 'x-api-key': apiKey }
}

/** The `BackendUnreachable` error for a request that got no answer (or `signal.reason` if aborted). */
export function unreachable(ctx: HttpContext, input: SendInput, err: unknown): JobsError {
  if (input.signal?.aborted) throw input.signal.reason
  const ambiguous =
    input.method === 'POST' && input.what === 'create the job'
      ? ' If the request reached the backend the job may exist anyway; check before submitting again.'
      : ''
  return new JobsError(
    JobsErrorCode.BackendUnreachable,
    `Could not reach the job backend at ${ctx.root} to ${input.what}: ${messageOf(err)}. Check backendUrl (or SYNTH_BACKEND_URL) and the network.${ambiguous}`,
    { cause: err, ...(input.jobId === undefined ? {} : { jobId: input.jobId }) },
  )
}

/** Sends one request and reads a JSON reply (any status); throws only when no answer came. */
export async function send(ctx: HttpContext, input: SendInput): Promise<JsonReply> {
  const headers: Record<string, string> = {
    accept: 'application/json',
    ...authHeaders(ctx.apiKey),
    ...(input.body === undefined ? {} : { 'content-type': 'application/json' }),
    ...input.headers,
  }
  try {
    const res = await request(urlOf(ctx, input.path, input.query), {
      method: input.method,
      headers,
      body: input.body === undefined ? null : JSON.stringify(input.body),
      dispatcher: ctx.dispatcher,
      headersTimeout: ctx.requestTimeoutMs,
      bodyTimeout: ctx.requestTimeoutMs,
      signal: input.signal ?? null,
    })
    const text = await res.body.text()
    let json: unknown
    try {
      json = text === '' ? undefined : JSON.parse(text)
    } catch {
      json = undefined
    }
    return { status: res.statusCode, json, text }
  } catch (err) {
    throw unreachable(ctx, input, err)
  }
}

/**
 * The explanation in an error body: `detail` (FastAPI; a string or `{ message }`), `error` (a string
 * or `{ message }`), or `message`; control characters blanked, cut at 500 characters.
 */
export function bodyDetail(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null) return undefined
  const body = json as Record<string, unknown>
  const pick = (v: unknown): unknown =>
    typeof v === 'object' && v !== null ? (v as Record<string, unknown>).message : v
  const detail = [pick(body.detail), pick(body.error), body.message].find(
    (v): v is string => typeof v === 'string' && v.trim() !== '',
  )
  return detail
    ?.replace(/\p{Cc}+/gu, ' ')
    .trim()
    .slice(0, 500)
}

/** Throws the {@link JobsError} for a non-2xx reply: 401/403 auth, 429 usage limit, else backend error. */
export function checkReply(reply: Pick<JsonReply, 'status' | 'json'>, input: SendInput): void {
  const { status } = reply
  if (status >= 200 && status < 300) return
  const detail = bodyDetail(reply.json)
  const says = detail === undefined ? '' : ` The backend says: ${detail}`
  const options = { status, ...(input.jobId === undefined ? {} : { jobId: input.jobId }) }
  if (status === 401 || status === 403) {
    throw new JobsError(
      JobsErrorCode.Auth,
      `The job backend refused the API key (HTTP ${status}) to ${input.what}. Check apiKey (or SYNTH_API_KEY) and that it belongs to this backend.${says}`,
      options,
    )
  }
  if (status === 429) {
    throw new JobsError(
      JobsErrorCode.UsageLimit,
      `The job backend answered HTTP 429 to ${input.what}: the usage limit is reached. Wait or raise the limit, then retry.${says}`,
      options,
    )
  }
  throw new JobsError(
    JobsErrorCode.BackendError,
    `The job backend answered HTTP ${status} to ${input.what}.${says || ' (no explanation in the body)'}`,
    options,
  )
}

/** Throws `BackendError` (a reply we cannot read), naming what was expected. */
export function protocolError(input: SendInput, expected: string, reply: JsonReply): JobsError {
  return new JobsError(
    JobsErrorCode.BackendError,
    `The job backend's reply to ${input.what} is not what this client reads: expected ${expected}; got ${JSON.stringify(reply.text.slice(0, 200))}. Check that backendUrl points at a Synth job backend.`,
    { status: reply.status, ...(input.jobId === undefined ? {} : { jobId: input.jobId }) },
  )
}

/** An open event stream: status, content type and the body (to be read or destroyed). */
export interface OpenStream {
  readonly status: number
  readonly contentType: string
  readonly body: Dispatcher.ResponseData['body']
}

/** Opens `GET path` with `Accept: text/event-stream`; throws only when no answer came. */
export async function openStream(ctx: HttpContext, input: SendInput): Promise<OpenStream> {
  try {
    const res = await request(urlOf(ctx, input.path, input.query), {
      method: 'GET',
      headers: { accept: 'text/event-stream', 'cache-control': 'no-cache', ...authHeaders(ctx.apiKey) },
      dispatcher: ctx.dispatcher,
      headersTimeout: ctx.requestTimeoutMs,
      bodyTimeout: ctx.streamIdleTimeoutMs,
      signal: input.signal ?? null,
    })
    const type = res.headers['content-type']
    return { status: res.statusCode, contentType: String(type ?? ''), body: res.body }
  } catch (err) {
    throw unreachable(ctx, input, err)
  }
}
