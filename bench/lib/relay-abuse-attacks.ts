/**
 * The attacks of `pnpm bench relay-abuse`, run in the attacker's own process with the attacker's
 * API key. Each starts, says when it is in place (`established`), and on `stop` cleans up after
 * itself (connections closed, leases deleted) and returns its counts.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { Agent, request } from 'undici'
import WebSocket from 'ws'
import type * as AgentModule from '@taskapp/tunnel-synth'
import { builtEntry } from './built-package'
import { count, runSlots } from './raw-http'
import type { SlotRun, Tally } from './raw-http'

/** A running attack. */
export interface Attack {
  /** Resolves once the attack is in place (every slot opened, every connection made). */
  established: Promise<void>
  /** Undo the attack and report its counts. */
  stop(): Promise<Tally>
}

export interface AttackContext {
  relayUrl: string
  apiKey: string
  /** The victim's measuring window, in seconds (the lease flood spreads over it). */
  seconds: number
}

const LEASES_PATH = '/api/v1/synthtunnel/leases'

interface Lease {
  lease_id: string
  public_url: string
  worker_token: string
  agent_connect: { url: string; agent_token: string }
}

async function createLease(
  ctx: AttackContext,
  dispatcher?: Agent,
): Promise<{ status: string; lease?: Lease }> {
  const res = await request(`${ctx.relayUrl}${LEASES_PATH}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ctx.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ client_instance_id: 'attacker', local_target: { host: '127.0.0.1', port: 9 } }),
    ...(dispatcher && { dispatcher }),
  })
  const body = (await res.body.json()) as Lease & { code?: string }
  if (res.statusCode === 201) return { status: '201', lease: body }
  return { status: `${res.statusCode}${body.code ? ` ${body.code}` : ''}` }
}

async function deleteLease(ctx: AttackContext, id: string, dispatcher?: Agent): Promise<number> {
  const res = await request(`${ctx.relayUrl}${LEASES_PATH}/${encodeURIComponent(id)}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${ctx.apiKey}` },
    ...(dispatcher && { dispatcher }),
  })
  await res.body.dump()
  return res.statusCode
}

/**
 * A lease with a hand-driven agent on a bare `ws` socket: it ATTACHes and never answers a request.
 * `stopReading` pauses the socket after ATTACH_ACK, so the relay's frames pile up unread.
 */
async function silentAgent(ctx: AttackContext, stopReading: boolean) {
  const { status, lease } = await createLease(ctx)
  if (!lease) throw new Error(`attacker lease refused: ${status}`)
  const ws = new WebSocket(lease.agent_connect.url, {
    headers: { authorization: `Bearer ${lease.agent_connect.agent_token}` },
  })
  ws.on('error', () => {})
  await once(ws, 'open')
  ws.send(JSON.stringify({ type: 'ATTACH', agent_id: 'attacker', leases: [{ lease_id: lease.lease_id }] }))
  const [ack] = (await once(ws, 'message')) as [Buffer]
  if (!ack.toString().includes('ATTACH_ACK')) throw new Error(`no ATTACH_ACK: ${ack.toString()}`)
  ws.on('message', () => {}) // reads REQ_* frames (until paused) and ignores them
  if (stopReading) ws.pause() // the TCP socket is no longer read
  return {
    lease,
    async close() {
      ws.terminate()
      await deleteLease(ctx, lease.lease_id)
    },
  }
}

/** Slots aimed at `url` with the worker token; `stop` also runs `cleanup`. */
function slotAttack(run: SlotRun, extra: Tally, cleanup: () => Promise<void>): Attack {
  return {
    established: run.ramped,
    async stop() {
      run.stop()
      await cleanup()
      return { opened: run.opened(), ...extra, ...run.tally }
    },
  }
}

/**
 * 1. `slots` uploads trickling one byte a second through the attacker's own tunnel (a real agent
 * forwarding to a local echo server in this process), re-opened when the relay cuts them (408).
 */
async function trickle(ctx: AttackContext, slots: number): Promise<Attack> {
  const { synthTunnel } = (await import(builtEntry('tunnel-synth').href)) as typeof AgentModule
  const echo = createServer((req, res) => req.pipe(res))
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
  const port = (echo.address() as { port: number }).port
  const tunnel = await synthTunnel({ backendUrl: ctx.relayUrl, apiKey: ctx.apiKey, env: {} }).open({
    localUrl: `http://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
  })
  const run = runSlots(slots, 100, () => ({
    method: 'POST',
    url: `${tunnel.url}/upload`,
    headers: { ...tunnel.headers, 'content-type': 'application/octet-stream', 'content-length': '100000' },
    afterWrite(socket: Socket) {
      socket.write('x')
      const t = setInterval(() => socket.write('x'), 1000)
      return () => clearInterval(t)
    },
  }))
  return slotAttack(run, {}, async () => {
    await tunnel.close()
    await new Promise<void>((r) => echo.close(() => r()))
  })
}

/** 2 and 5. `slots` requests to a lease whose agent never answers (or does not even read). */
async function silent(ctx: AttackContext, slots: number, stopReading: boolean): Promise<Attack> {
  const agent = await silentAgent(ctx, stopReading)
  const body = stopReading ? Buffer.alloc(1024 * 1024, 'b') : undefined
  const run = runSlots(slots, 100, () => ({
    method: body ? 'POST' : 'GET',
    url: `${agent.lease.public_url}/rollout`,
    headers: {
      'x-synthtunnel-worker-token': agent.lease.worker_token,
      ...(body && { 'content-type': 'application/octet-stream', 'content-length': String(body.length) }),
    },
    ...(body && { body }),
  }))
  return slotAttack(run, {}, () => agent.close())
}

/** 3. `total` lease creations with one key, spread over the measuring window (at most 200/s). */
function leaseFlood(ctx: AttackContext, total: number): Attack {
  const dispatcher = new Agent({ connections: 8 })
  const tally: Tally = {}
  const ids: string[] = []
  const perSecond = Math.min(200, total / ctx.seconds)
  const t0 = performance.now()
  const one = async (i: number) => {
    await delay(Math.max(0, t0 + (i * 1000) / perSecond - performance.now()))
    try {
      const { status, lease } = await createLease(ctx, dispatcher)
      count(tally, `lease ${status}`)
      if (lease) ids.push(lease.lease_id)
    } catch (err) {
      count(tally, `lease error ${(err as NodeJS.ErrnoException).code ?? 'unknown'}`)
    }
  }
  const done = Promise.all(Array.from({ length: total }, (_, i) => one(i)))
  return {
    established: Promise.resolve(), // the flood runs during the measurement
    async stop() {
      await done
      const statuses = await Promise.all(ids.map((id) => deleteLease(ctx, id, dispatcher)))
      for (const s of statuses) count(tally, `deleted ${s}`)
      await dispatcher.close()
      return tally
    },
  }
}

/** 4. `total` TCP connections to the relay, opened at 500/s, that never send a byte. */
function idle(ctx: AttackContext, total: number): Attack {
  const u = new URL(ctx.relayUrl)
  const sockets: Socket[] = []
  const tally: Tally = {}
  let stopping = false
  const open = () =>
    new Promise<void>((resolve) => {
      const s = connect(Number(u.port), u.hostname)
      sockets.push(s)
      s.once('connect', () => {
        count(tally, 'connected')
        resolve()
      })
      s.once('error', (err: NodeJS.ErrnoException) => {
        count(tally, `error ${err.code ?? err.message}`)
        resolve()
      })
      s.once('close', () => {
        if (!stopping) count(tally, 'closed by the relay')
      })
    })
  const t0 = performance.now()
  const established = Promise.all(
    Array.from({ length: total }, async (_, i) => {
      await delay(Math.max(0, t0 + i * 2 - performance.now()))
      await open()
    }),
  ).then(() => {})
  return {
    established,
    async stop() {
      await established
      stopping = true
      for (const s of sockets) s.destroy()
      return tally
    },
  }
}

/** The attacks by name, with their sizes. */
export const ATTACKS = {
  trickle: (ctx: AttackContext, n: number) => trickle(ctx, n),
  'never-answers': (ctx: AttackContext, n: number) => silent(ctx, n, false),
  leases: async (ctx: AttackContext, n: number) => leaseFlood(ctx, n),
  idle: async (ctx: AttackContext, n: number) => idle(ctx, n),
  'stops-reading': (ctx: AttackContext, n: number) => silent(ctx, n, true),
} satisfies Record<string, (ctx: AttackContext, n: number) => Promise<Attack>>

export type AttackName = keyof typeof ATTACKS
