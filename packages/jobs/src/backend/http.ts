/**
 * The small HTTP toolkit of the local backend and the deterministic model: JSON bodies with a size
 * limit, JSON replies, wire errors, and listening with a typed error.
 */
import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { JobsError } from '../errors'

/** A request error with its HTTP status and a stable wire code. */
export class HttpError extends Error {
  override readonly name = 'HttpError'
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** Reads the whole body, at most `limit` bytes (413 past it). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) throw new HttpError(413, 'payload_too_large', `The body is larger than ${limit} bytes.`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** Reads a JSON body (400 when it is not JSON; an empty body reads as `{}`). */
export async function readJson(req: IncomingMessage, limit = 1_048_576): Promise<unknown> {
  const body = await readBody(req, limit)
  if (body.length === 0) return {}
  try {
    return JSON.parse(body.toString('utf8')) as unknown
  } catch {
    throw new HttpError(400, 'invalid_json', 'The request body is not valid JSON.')
  }
}

/** Writes a JSON reply. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  })
  res.end(text)
}

/**
 * Writes an error reply: `{"detail": message, "error": {"code", "message"}}`, the shape synth-ai's
 * clients read (`detail`) plus a stable code.
 */
export function sendError(res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const e =
    error instanceof HttpError
      ? error
      : error instanceof JobsError
        ? new HttpError(400, error.code, error.message)
        : new HttpError(500, 'internal_error', 'Internal error of the local backend (see its log).')
  const headers: Record<string, string> = e.status === 401 ? { 'www-authenticate': 'Bearer' } : {}
  sendJson(res, e.status, { detail: e.message, error: { code: e.code, message: e.message } }, headers)
}

/** Whether `value` is a plain JSON object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Listens on `host:port` and resolves with the bound port; a listen error (port in use, bad host)
 * rejects with `TASKAPP_ERR_JOBS_LISTEN_FAILED`.
 */
export async function listen(server: Server, port: number, host: string, what: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (cause: Error) => {
      reject(
        new JobsError(
          'TASKAPP_ERR_JOBS_LISTEN_FAILED',
          `${what} could not listen on ${host}:${port} (${cause.message}); pass another "port" (0 picks a free one) or "host".`,
          { cause },
        ),
      )
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  const address = server.address()
  return typeof address === 'object' && address !== null ? address.port : port
}

/** Closes a server and drops its open connections (idle keep-alive ones too). */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!server.listening) return resolve()
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

/** `http://host:port`, with brackets for an IPv6 host. */
export function originOf(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
}

function keyEquals(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Whether the request carries one of `apiKeys` (`Authorization: Bearer <key>` or `X-API-Key: <key>`). */
export function hasValidKey(req: IncomingMessage, apiKeys: readonly string[]): boolean {
  const bearer = /^bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim()
  const header = req.headers['x-api-key']
  const presented = [bearer, typeof header === 'string' ? header.trim() : undefined].filter(
    (k): k is string => k !== undefined && k !== '',
  )
  return presented.some((p) => apiKeys.some((k) => keyEquals(p, k)))
}
