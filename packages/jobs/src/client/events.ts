/**
 * A job's events as one async iterator: the SSE stream first; when it drops, a catch-up through the
 * events pages from the last `seq` seen, then a reconnection; when it is unavailable (404/405, not
 * an event stream) or keeps failing, pages of events polled for the rest of the job. The
 * {@link EventCursor} makes every event count once across all of it.
 */
import { JobsError, JobsErrorCode } from '../errors'
import { isFinalStatus, type WireRoutes } from '../wire'
import { toJobEvent, type EventCursor } from './event-cursor'
import { checkReply, openStream, protocolError, send, type HttpContext, type SendInput } from './http'
import { createSseParser, type SseMessage } from './sse'
import type { JobEvent, JobSnapshot } from './types'

/** Events asked for per page (synth-ai's default). */
export const EVENTS_PAGE_LIMIT = 500

/** What the event source needs from its job. */
export interface EventSourceContext {
  readonly http: HttpContext
  readonly routes: WireRoutes
  readonly jobId: string
  readonly pollIntervalMs: number
  readonly maxStreamFailures: number
  readonly fetchStatus: (signal?: AbortSignal) => Promise<JobSnapshot>
}

/** How one stream connection ended. */
type StreamOutcome =
  | { readonly kind: 'terminal' }
  | { readonly kind: 'unavailable' }
  | { readonly kind: 'dropped'; readonly delivered: boolean }

/** How one catch-up through the pages ended. */
interface PageOutcome {
  readonly terminal: boolean
  readonly available: boolean
}

/** Waits `ms`, or rejects with `signal.reason`; the timer and listener are gone either way. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

function eventOf(message: SseMessage): JobEvent | undefined {
  try {
    return toJobEvent(JSON.parse(message.data), message.id)
  } catch {
    return undefined // not JSON: a keep-alive or a foreign line, ignored as synth-ai does
  }
}

/** Reads one stream connection, yielding new events; never throws for a dropped stream. */
async function* streamOnce(
  ctx: EventSourceContext,
  cursor: EventCursor,
  signal?: AbortSignal,
): AsyncGenerator<JobEvent, StreamOutcome> {
  const input: SendInput = {
    method: 'GET',
    path: ctx.routes.stream(ctx.jobId),
    query: { since_seq: cursor.lastSeq },
    signal,
    what: 'stream the job events',
    jobId: ctx.jobId,
  }
  let res
  try {
    res = await openStream(ctx.http, input)
  } catch (err) {
    if (signal?.aborted) throw signal.reason
    if (err instanceof JobsError && err.code === JobsErrorCode.BackendUnreachable) {
      return { kind: 'dropped', delivered: false }
    }
    throw err
  }
  let delivered = false
  try {
    if (res.status === 404 || res.status === 405) return { kind: 'unavailable' }
    if (res.status === 401 || res.status === 403 || res.status === 429)
      checkReply({ ...res, json: undefined }, input)
    if (res.status < 200 || res.status >= 300) return { kind: 'dropped', delivered }
    if (!res.contentType.toLowerCase().includes('text/event-stream')) return { kind: 'unavailable' }
    const queue: SseMessage[] = []
    const parser = createSseParser((m) => queue.push(m))
    const decoder = new TextDecoder()
    for await (const chunk of res.body) {
      parser.feed(decoder.decode(chunk as Buffer, { stream: true }))
      for (let m = queue.shift(); m !== undefined; m = queue.shift()) {
        if (m.data.trim() === '[DONE]') return { kind: 'dropped', delivered }
        const event = eventOf(m)
        if (event === undefined || !cursor.accept(event)) continue
        delivered = true
        yield event
        if (event.terminalStatus !== undefined) return { kind: 'terminal' }
      }
    }
    return { kind: 'dropped', delivered }
  } catch (err) {
    if (signal?.aborted) throw signal.reason
    if (err instanceof JobsError) throw err
    return { kind: 'dropped', delivered } // reset, idle past streamIdleTimeoutMs, ...
  } finally {
    if (!res.body.destroyed) {
      res.body.on('error', () => {}) // destroying an unread body emits an abort error: nobody awaits it
      res.body.destroy()
    }
  }
}

/** The events of a page reply (`{ events: [...] }` or a bare list), sorted by `seq` when all have one. */
function pageEvents(json: unknown): unknown[] | undefined {
  const list: unknown = Array.isArray(json)
    ? json
    : typeof json === 'object' && json !== null
      ? (json as Record<string, unknown>).events
      : undefined
  if (!Array.isArray(list)) return undefined
  const items = list as unknown[]
  const seqOf = (e: unknown): unknown =>
    typeof e === 'object' && e !== null ? (e as Record<string, unknown>).seq : undefined
  if (!items.every((e) => typeof seqOf(e) === 'number')) return items
  return [...items].sort((a, b) => (seqOf(a) as number) - (seqOf(b) as number))
}

/** Pages through the events after the cursor, yielding new ones, until a short page. */
export async function* pageAll(
  ctx: EventSourceContext,
  cursor: EventCursor,
  signal?: AbortSignal,
): AsyncGenerator<JobEvent, PageOutcome> {
  for (;;) {
    const input: SendInput = {
      method: 'GET',
      path: ctx.routes.events(ctx.jobId),
      query: { since_seq: cursor.lastSeq, limit: EVENTS_PAGE_LIMIT },
      signal,
      what: 'read the job events',
      jobId: ctx.jobId,
    }
    const reply = await send(ctx.http, input)
    if (reply.status === 404 || reply.status === 405) return { terminal: false, available: false }
    checkReply(reply, input)
    const list = pageEvents(reply.json)
    if (list === undefined) throw protocolError(input, '{ "events": [...] } or a list of events', reply)
    let fresh = 0
    for (const raw of list) {
      const event = toJobEvent(raw)
      if (event === undefined || !cursor.accept(event)) continue
      fresh++
      yield event
      if (event.terminalStatus !== undefined) return { terminal: true, available: true }
    }
    // A short page is the end; a full page of nothing new means since_seq is ignored: stop too.
    if (list.length < EVENTS_PAGE_LIMIT || fresh === 0) return { terminal: false, available: true }
  }
}

/**
 * The job's events from `cursor` on, ending after a terminal event (`…job.completed`, `failed`,
 * `cancelled`, `paused`) or, when none comes, once the status route says the job is final.
 */
export async function* jobEvents(
  ctx: EventSourceContext,
  cursor: EventCursor,
  signal?: AbortSignal,
): AsyncGenerator<JobEvent, void> {
  let streaming = true
  let paging = true
  let failures = 0
  for (;;) {
    signal?.throwIfAborted()
    let wait = true
    if (streaming) {
      const outcome = yield* streamOnce(ctx, cursor, signal)
      if (outcome.kind === 'terminal') return
      if (outcome.kind === 'unavailable') streaming = false
      else {
        failures = outcome.delivered ? 0 : failures + 1
        if (failures >= ctx.maxStreamFailures) streaming = false
        wait = !outcome.delivered
      }
    }
    if (paging) {
      const page = yield* pageAll(ctx, cursor, signal)
      if (page.terminal) return
      paging = page.available
    }
    const snapshot = await ctx.fetchStatus(signal)
    if (isFinalStatus(snapshot.status)) {
      // Events written just before the status changed: from the pages, else one last stream read
      // (a finished job's stream replays from since_seq and ends at its terminal event).
      if (paging) yield* pageAll(ctx, cursor, signal)
      else if (streaming) yield* streamOnce(ctx, cursor, signal)
      return
    }
    if (wait) await sleep(ctx.pollIntervalMs, signal)
  }
}
