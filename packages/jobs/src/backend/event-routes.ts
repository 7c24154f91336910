/**
 * A job's events over HTTP: the SSE stream (`…/events/stream`: replay after `Last-Event-ID` or
 * `since_seq`, then live, `data: [DONE]` after the terminal event) and pages (`…/events?since_seq&limit`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError, sendJson } from './http'
import type { JobRecord } from './job-record'
import { isTerminalEvent, type EventPageWire, type JobEventWire } from './wire-shapes'

/** Interval of the SSE keep-alive comments. */
export const SSE_HEARTBEAT_MS = 15_000

function nonNegativeInt(text: string | null | undefined, name: string): number | undefined {
  if (text === null || text === undefined || text.trim() === '') return undefined
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0)
    throw new HttpError(400, 'invalid_request', `${name} must be a non-negative integer.`)
  return n
}

/** `since_seq` of the query, or the SSE `Last-Event-ID` header (which wins). */
function sinceOf(req: IncomingMessage, url: URL): number {
  const header = req.headers['last-event-id']
  const fromHeader = nonNegativeInt(typeof header === 'string' ? header : undefined, 'Last-Event-ID')
  return fromHeader ?? nonNegativeInt(url.searchParams.get('since_seq'), 'since_seq') ?? 0
}

/** `GET …/events?since_seq=<n>&limit=<m>`: events with `seq > n`, at most `m` (default 500, at most 1000). */
export function pageEvents(req: IncomingMessage, res: ServerResponse, url: URL, job: JobRecord): void {
  const since = sinceOf(req, url)
  const limit = nonNegativeInt(url.searchParams.get('limit'), 'limit') ?? 500
  if (limit < 1 || limit > 1000) throw new HttpError(400, 'invalid_request', 'limit must be from 1 to 1000.')
  const events = job.eventsSince(since, limit)
  const last = events[events.length - 1]
  const page: EventPageWire = {
    events,
    next_seq: last?.seq ?? since,
    has_more: (last?.seq ?? since) < job.events.length,
  }
  sendJson(res, 200, page)
}

function frame(event: JobEventWire, named = true): string {
  return `id: ${event.seq}\n${named ? `event: ${event.type}\n` : ''}data: ${JSON.stringify(event)}\n\n`
}

/** Options of {@link streamEvents}. */
export interface StreamOptions {
  /** The open streams of the backend: this one is in it while it is open (`closeEventStreams`). */
  readonly open?: Set<ServerResponse>
  /** Sent as the SSE `retry:` field: how long a browser's `EventSource` waits to reconnect. */
  readonly retryMs?: number
  /**
   * Name each message with an `event: <type>` line. Off for a browser's `EventSource`, which hands
   * only unnamed messages to `onmessage` (the type is in the JSON anyway).
   * @default true
   */
  readonly named?: boolean
}

/** `GET …/events/stream`: Server-Sent Events, one JSON event per `data:` line, ended by `data: [DONE]`. */
export function streamEvents(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  job: JobRecord,
  options: StreamOptions = {},
): void {
  const since = sinceOf(req, url)
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  })
  res.flushHeaders()
  if (options.retryMs !== undefined) res.write(`retry: ${options.retryMs}\n\n`)
  for (const event of job.eventsSince(since)) res.write(frame(event, options.named))
  if (job.terminal) {
    res.end('data: [DONE]\n\n')
    return
  }
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS)
  heartbeat.unref()
  options.open?.add(res)
  const cleanup = (): void => {
    unsubscribe()
    clearInterval(heartbeat)
    options.open?.delete(res)
    res.off('close', cleanup)
  }
  const unsubscribe = job.subscribe((event) => {
    res.write(frame(event, options.named))
    if (!isTerminalEvent(event.type)) return
    cleanup()
    res.end('data: [DONE]\n\n')
  })
  res.on('close', cleanup)
}
