/**
 * Raw HTTP/1.1 requests on bare `node:net` sockets, for attack traffic that a client library would
 * not send (a body trickling a byte a second, a body that cannot be delivered), and a runner that
 * keeps N such requests open, re-opening each at most once a second when it ends.
 */
import { setMaxListeners } from 'node:events'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'

/** Counts by outcome (`408`, `429 TUNNEL_LEASE_IN_FLIGHT_LIMIT`, `closed`, `error ECONNRESET`, ...). */
export type Tally = Record<string, number>

export function count(tally: Tally, key: string, by = 1): void {
  tally[key] = (tally[key] ?? 0) + by
}

/** One request to send on a fresh connection. */
export interface RawRequest {
  method: string
  /** Absolute URL (its host and port are connected to). */
  url: string
  headers: Record<string, string>
  /** Written right after the head, when given. */
  body?: Buffer
  /** Called once the head is written; returns what to undo when the request ends (a trickle timer). */
  afterWrite?: (socket: Socket) => () => void
}

/**
 * The outcome of the first response on `socket`: `"<status>"`, or `"<status> <code>"` for a
 * problem+json answer, or `closed` / `error <code>` when the connection ended before a whole
 * response arrived.
 */
function firstResponse(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0)
    const done = (outcome: string) => {
      socket.off('data', onData)
      resolve(outcome)
    }
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      const text = buf.toString('latin1')
      const headEnd = text.indexOf('\r\n\r\n')
      if (headEnd === -1) return
      const status = text.slice(9, 12)
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, headEnd))?.[1] ?? 0)
      const body = text.slice(headEnd + 4)
      if (body.length < length) return
      let code = ''
      try {
        code = (JSON.parse(body.slice(0, length)) as { code?: string }).code ?? ''
      } catch {
        // not JSON: the status says enough
      }
      done(code ? `${status} ${code}` : status)
    }
    socket.on('data', onData)
    socket.once('error', (err: NodeJS.ErrnoException) => done(`error ${err.code ?? err.message}`))
    socket.once('close', () => done('closed'))
  })
}

/** Send `request` on a new connection; resolves with its outcome (see {@link firstResponse}). */
export function rawRequest(request: RawRequest, sockets: Set<Socket>): Promise<string> {
  const u = new URL(request.url)
  const socket = connect(Number(u.port), u.hostname)
  sockets.add(socket)
  socket.on('error', () => {})
  const outcome = firstResponse(socket)
  let undo = () => {}
  socket.once('connect', () => {
    const lines = [`${request.method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`]
    for (const [k, v] of Object.entries(request.headers)) lines.push(`${k}: ${v}`)
    socket.write(`${lines.join('\r\n')}\r\n\r\n`)
    if (request.body) socket.write(request.body)
    undo = request.afterWrite?.(socket) ?? undo
  })
  return outcome.finally(() => {
    undo()
    sockets.delete(socket)
    socket.destroy()
  })
}

/** N requests kept open, opened at `openPerSecond` and re-opened when they end. */
export interface SlotRun {
  /** Requests sent, in total. */
  readonly opened: () => number
  /** Resolves once every slot has sent its first request. */
  readonly ramped: Promise<void>
  /** Outcomes of the requests that ended before {@link stop} (not counting those it cut). */
  readonly tally: Tally
  /** Stop re-opening and destroy the open connections. */
  stop(): void
}

/**
 * Keep `slots` requests made by `make` in flight: slot `i` starts at `i / openPerSecond` s, and
 * when its request ends it sends the next one, at most once a second (a bounded attack: a refused
 * request is retried about as fast as `Retry-After: 1` allows, not in a tight loop).
 */
export function runSlots(slots: number, openPerSecond: number, make: () => RawRequest): SlotRun {
  const stopper = new AbortController()
  setMaxListeners(Infinity, stopper.signal) // one listener per waiting slot
  const sockets = new Set<Socket>()
  const tally: Tally = {}
  let opened = 0
  let started = 0
  let onRamped = () => {}
  const ramped = new Promise<void>((resolve) => (onRamped = resolve))
  const slot = async (i: number) => {
    await delay((i * 1000) / openPerSecond, undefined, { signal: stopper.signal })
    if ((started += 1) === slots) onRamped()
    while (!stopper.signal.aborted) {
      const t0 = performance.now()
      opened += 1
      const outcome = await rawRequest(make(), sockets)
      if (stopper.signal.aborted) return
      count(tally, outcome)
      await delay(Math.max(0, t0 + 1000 - performance.now()), undefined, { signal: stopper.signal })
    }
  }
  for (let i = 0; i < slots; i++) slot(i).catch(() => {}) // aborted delays end the loops
  return {
    opened: () => opened,
    ramped,
    tally,
    stop() {
      stopper.abort()
      for (const s of sockets) s.destroy()
      sockets.clear()
    },
  }
}
