/**
 * Rollout throughput of `createTaskApp` against a bare Express app with the same trivial handler,
 * both measured in this run over a real socket (127.0.0.1) with an undici pool of 64 connections.
 *
 * Each server runs alone in a child process (one per round, rounds alternate bare / task-app),
 * so the load generator in this process does not share an event loop with it. The task app does
 * everything it does in production: request id, API-key check (X-API-Key, constant time), zod
 * validation of the request and of the handler's response, job bookkeeping. The bare app only
 * parses JSON and answers. Besides requests per second, the child reports its own CPU time per
 * request, which is less sensitive to the load generator and to neighbours on the machine.
 *
 * The task app is measured as users run it: the built `dist/` (plain JS, like Express itself),
 * not the TypeScript source through tsx, whose keepNames wrappers would tax every closure. The
 * bench builds the package first when `dist/` is missing or older than `src/`.
 *
 * Target: task-app throughput >= 80 % of bare Express.
 * Run: pnpm bench task-server
 */
import { fork, type ChildProcess } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { Pool } from 'undici'
import type * as TaskServerModule from '@taskapp/task-server'
import { builtEntry } from './lib/built-package'

type TaskServer = typeof TaskServerModule

const DIST_ENTRY = builtEntry('task-server')

const CONNECTIONS = 64
const WARMUP_MS = 1_500
const SLICE_MS = 500
const SLICES = 20
const KEY = 'sk-env-bench-0123456789abcdef'

type Kind = 'bare' | 'taskapp'
/** `sync`: the handler returns its answer; `async`: an `async` handler (a promise), as most real ones are. */
type HandlerKind = 'sync' | 'async'

const body = JSON.stringify({
  trace_correlation_id: 'trace-bench',
  env: { env_name: 'banking77', seed: 3, config: { split: 'train' } },
  policy: { policy_name: 'p', config: { model: 'gpt-4o-mini', temperature: 0 }, output_mode: 'tool_calls' },
  on_done: 'reset',
  safety: { max_time_s: 3600 },
})

interface RolloutLike {
  trace_correlation_id: string
}

function handler(request: RolloutLike) {
  return { trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: 1 } }
}

async function asyncHandler(request: RolloutLike) {
  return handler(request)
}

async function buildApp(kind: Kind, handlerKind: HandlerKind) {
  if (kind === 'bare') {
    const app = express()
    app.disable('x-powered-by')
    app.set('etag', false)
    app.use(express.json({ limit: '10mb' }))
    if (handlerKind === 'sync') {
      app.post('/rollout', (req, res) => {
        res.json(handler(req.body as RolloutLike))
      })
    } else {
      app.post('/rollout', async (req, res) => {
        res.json(await asyncHandler(req.body as RolloutLike))
      })
    }
    return app
  }
  const { createTaskApp } = (await import(DIST_ENTRY.href)) as TaskServer
  return createTaskApp({
    appId: 'bench',
    name: 'Bench',
    description: 'trivial handler',
    apiKeys: [KEY],
    provideTasksetDescription: () => ({}),
    provideTaskInstances: () => [],
    rollout: handlerKind === 'sync' ? (request) => handler(request) : (request) => asyncHandler(request),
  })
}

// ---- child: one server ------------------------------------------------------------------
async function serve(kind: Kind, handlerKind: HandlerKind): Promise<void> {
  const app = await buildApp(kind, handlerKind)
  const server = app.listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  let cpuAtStart = process.cpuUsage()
  process.on('message', (msg: string) => {
    if (msg === 'mark') {
      cpuAtStart = process.cpuUsage()
      process.send?.({ type: 'marked' })
    } else if (msg === 'report') {
      const cpu = process.cpuUsage(cpuAtStart)
      process.send?.({ type: 'cpu', micros: cpu.user + cpu.system })
    } else if (msg === 'exit') {
      server.closeAllConnections()
      server.close(() => process.exit(0))
    }
  })
  process.send?.({ type: 'port', port: (server.address() as AddressInfo).port })
}

// ---- parent: load generator ------------------------------------------------------------
function nextMessage<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (msg: { type: string } & T) => {
      if (msg.type !== type) return
      child.off('message', onMessage)
      child.off('exit', onExit)
      resolve(msg)
    }
    const onExit = (code: number | null) =>
      reject(new Error(`server child exited (${code}) before sending ${type}`))
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

async function load(pool: Pool, ms: number): Promise<{ ok: number; failed: number }> {
  const deadline = performance.now() + ms
  let ok = 0
  let failed = 0
  const worker = async () => {
    while (performance.now() < deadline) {
      const res = await pool.request({
        method: 'POST',
        path: '/rollout',
        headers: { 'content-type': 'application/json', 'x-api-key': KEY },
        body,
      })
      await res.body.dump()
      if (res.statusCode === 200) ok += 1
      else failed += 1
    }
  }
  await Promise.all(Array.from({ length: CONNECTIONS }, worker))
  return { ok, failed }
}

interface Server {
  readonly child: ChildProcess
  readonly pool: Pool
  ok: number
  ms: number
}

async function startServer(kind: Kind, handlerKind: HandlerKind): Promise<Server> {
  const child = fork(import.meta.filename, ['--serve', kind, handlerKind], {
    execArgv: process.execArgv,
    stdio: 'inherit',
  })
  const { port } = await nextMessage<{ port: number }>(child, 'port')
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS, pipelining: 1 })
  return { child, pool, ok: 0, ms: 0 }
}

async function stopServer(server: Server): Promise<void> {
  await server.pool.close()
  const exited = new Promise((resolve) => server.child.once('exit', resolve))
  server.child.send('exit')
  await exited
}

async function cpuMicros(server: Server): Promise<number> {
  server.child.send('report')
  return (await nextMessage<{ micros: number }>(server.child, 'cpu')).micros
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

interface Comparison {
  handlerKind: HandlerKind
  bareRps: number
  appRps: number
  bareCpu: number
  appCpu: number
  sliceMedian: number
}

async function compare(handlerKind: HandlerKind): Promise<Comparison> {
  // Both servers run side by side and take turns under load in short slices (ABBA order), so
  // both see the same background noise of a shared machine; the ratio is the figure to read.
  const bare = await startServer('bare', handlerKind)
  const app = await startServer('taskapp', handlerKind)
  try {
    await load(bare.pool, WARMUP_MS)
    await load(app.pool, WARMUP_MS)
    for (const s of [bare, app]) {
      s.child.send('mark')
      await nextMessage(s.child, 'marked')
    }
    const sliceRatios: number[] = []
    for (let i = 0; i < SLICES; i++) {
      const order = i % 2 === 0 ? [bare, app] : [app, bare]
      const rps = new Map<Server, number>()
      for (const s of order) {
        const t0 = performance.now()
        const { ok, failed } = await load(s.pool, SLICE_MS)
        const ms = performance.now() - t0
        if (failed > 0 || ok === 0)
          throw new Error(`${s === bare ? 'bare' : 'taskapp'}: ${failed} non-200 answers`)
        s.ok += ok
        s.ms += ms
        rps.set(s, ok / ms)
      }
      sliceRatios.push(rps.get(app)! / rps.get(bare)!)
    }
    return {
      handlerKind,
      bareRps: (bare.ok / bare.ms) * 1000,
      appRps: (app.ok / app.ms) * 1000,
      bareCpu: (await cpuMicros(bare)) / bare.ok,
      appCpu: (await cpuMicros(app)) / app.ok,
      sliceMedian: median(sliceRatios),
    }
  } finally {
    await stopServer(bare)
    await stopServer(app)
  }
}

async function main(): Promise<void> {
  const results = [await compare('sync'), await compare('async')]
  console.log(
    `task-server: POST /rollout over 127.0.0.1, undici pool of ${CONNECTIONS} connections, ${SLICES} alternating slices of ${SLICE_MS} ms per server (target: task app >= 80 % of bare Express)`,
  )
  console.log(
    '| handler | bare Express req/s | createTaskApp req/s | ratio (median of slices) | server CPU/request bare → app |',
  )
  console.log('|---|---|---|---|---|')
  for (const r of results) {
    const ratio = r.appRps / r.bareRps
    console.log(
      `| ${r.handlerKind} | ${r.bareRps.toFixed(0)} | ${r.appRps.toFixed(0)} | **${(ratio * 100).toFixed(1)} %** (${(r.sliceMedian * 100).toFixed(1)} %) ${ratio >= 0.8 ? 'met' : 'MISSED'} | ${r.bareCpu.toFixed(0)} µs → ${r.appCpu.toFixed(0)} µs |`,
    )
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3] as Kind, process.argv[4] as HandlerKind)
else await main()
