/**
 * SynthTunnel benchmark: 1 KB JSON POSTs at 128 concurrency, direct to the local server vs through
 * relay + agent on loopback (throughput ratio, added p50/p99 latency), then peak RSS of the relay
 * and the agent during 128 concurrent 1 MB bodies. Relay, agent and local server each run in
 * their own process; the load generator runs here.
 *
 * Two local servers, because the ratio depends on how much work the server does per request (the
 * tunnel adds a roughly fixed cost per request):
 * - `createTaskApp` answering `POST /rollout` (API key, zod validation of request and response):
 *   what the tunnel fronts in practice;
 * - a bare `node:http` echo, the worst case: a server that does almost nothing.
 *
 * Fairness: direct and tunnel are measured in the same run by the same load generator (an undici
 * Pool of 128 connections, pipelining 1, the same body), in alternating rounds. Packages run from
 * their built `dist/`, as users run them. Each process reports its CPU time per request over the
 * measured windows only.
 *
 * Machine limits: on a 2-core machine the tunnel case runs 4 busy processes (load generator,
 * relay, agent, local server) on 2 cores, the direct case only 2, and a tunneled request crosses
 * loopback TCP three times instead of once. The CPU per tunneled request of relay and agent is the
 * figure that transfers to a deployment, where the relay runs on another machine.
 *
 * Run: `pnpm bench tunnel-synth` (env BENCH_SECONDS=4 to change each measuring window,
 * BENCH_ROUNDS=2 the rounds per server, BENCH_SKIP_BIG=1 to skip the 1 MB part, BENCH_PROF=1 for
 * --cpu-prof of the children in /tmp/tsprof).
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { Pool } from 'undici'
import type * as TaskServer from '@taskapp/task-server'
import type * as AgentModule from '@taskapp/tunnel-synth'
import type * as RelayModule from '@taskapp/tunnel-synth/relay'
import { builtEntry } from './lib/built-package'

const MB = 1024 * 1024
const role = process.argv[2]

type Msg = { type: string; [k: string]: unknown }

/** Children report warnings and errors on stderr so a failed run explains itself. */
const benchLogger = {
  debug() {},
  info() {},
  isLevelEnabled: (level: string) => level === 'warn' || level === 'error',
  warn: (obj: object, msg?: string) => console.error(`[${role}] warn ${msg} ${JSON.stringify(obj)}`),
  error: (obj: object, msg?: string) => console.error(`[${role}] error ${msg} ${JSON.stringify(obj)}`),
}

/**
 * CPU time, and the RSS peak when asked (`reset` with `rss: true`, the 1 MB phase only): polling
 * RSS every 5 ms costs the children ~5 % CPU (`memoryUsage()` and `memoryUsage.rss()` alike in
 * --cpu-prof), which the req/s phase would count as per-request cost.
 */
function sampler() {
  let baseline = process.memoryUsage.rss()
  let peak = baseline
  let cpu = process.cpuUsage()
  let t: NodeJS.Timeout | undefined
  return {
    reset(rss: boolean) {
      clearInterval(t)
      t = undefined
      baseline = process.memoryUsage.rss()
      peak = baseline
      cpu = process.cpuUsage()
      if (!rss) return
      t = setInterval(() => {
        const now = process.memoryUsage.rss()
        if (now > peak) peak = now
      }, 5)
      t.unref()
    },
    report: () => {
      const c = process.cpuUsage(cpu)
      const now = process.memoryUsage.rss()
      if (now > peak) peak = now
      return { baseline, peak, cpuMs: (c.user + c.system) / 1000 }
    },
  }
}

const TASK_KEY = 'sk-bench-0123456789abcdef'

async function child(): Promise<void> {
  const rss = sampler()
  const send = (m: Msg) => process.send?.(m)
  let extra: () => Record<string, unknown> = () => ({})
  if (role === 'echo') {
    const server = createServer((req, res) => {
      if (req.url === '/echo') {
        // stream the body back (1 MB case)
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        req.pipe(res)
        return
      }
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks)
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
        res.end(body)
      })
    })
    server.keepAliveTimeout = 30_000
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    send({ type: 'ready', port: (server.address() as { port: number }).port })
  } else if (role === 'taskapp') {
    const { createTaskApp } = (await import(builtEntry('task-server').href)) as typeof TaskServer
    const app = createTaskApp({
      appId: 'bench',
      name: 'Bench',
      description: 'trivial rollout handler',
      apiKeys: [TASK_KEY],
      provideTasksetDescription: () => ({}),
      provideTaskInstances: () => [],
      rollout: (request) => ({
        trace_correlation_id: request.trace_correlation_id,
        reward_info: { outcome_reward: 1 },
      }),
    })
    const server = app.listen(0, '127.0.0.1')
    server.keepAliveTimeout = 30_000
    await once(server, 'listening')
    send({ type: 'ready', port: (server.address() as { port: number }).port })
  } else if (role === 'relay') {
    const { createRelayServer } = (await import(
      builtEntry('tunnel-synth', 'relay.js').href
    )) as typeof RelayModule
    const relay = await createRelayServer({ apiKeys: ['bench'], maxInflight: 512, logger: benchLogger })
    extra = () => ({ peakMemoryInUse: relay.stats().peakMemoryInUse, budget: 64 * MB })
    send({ type: 'ready', url: relay.url })
  } else if (role === 'agent') {
    const { synthTunnel } = (await import(builtEntry('tunnel-synth').href)) as typeof AgentModule
    const [relayUrl, port, frames, key] = process.argv.slice(3)
    const tunnel = await synthTunnel({
      backendUrl: relayUrl!,
      apiKey: 'bench',
      env: {},
      localApiKeys: key ? [key] : [],
      maxInflight: 256,
      binaryFrames: frames !== 'plain',
      logger: benchLogger,
    }).open({
      localUrl: `http://127.0.0.1:${port}`,
      host: '127.0.0.1',
      port: Number(port),
    })
    send({ type: 'ready', url: tunnel.url, headers: tunnel.headers })
  }
  process.on('disconnect', () => process.exit(0)) // never outlive the benchmark
  process.on('message', (m: Msg) => {
    if (m.type === 'reset') {
      rss.reset(m.rss === true)
      send({ type: 'reset-done' })
    } else if (m.type === 'report') send({ type: 'report', ...rss.report(), ...extra() })
    else if (m.type === 'exit') process.exit(0)
  })
}

async function start(...args: string[]): Promise<{
  proc: ChildProcess
  ready: Msg
  ask(type: string, extra?: Record<string, unknown>): Promise<Msg>
}> {
  const proc = fork(import.meta.filename, args, {
    execArgv: [
      ...process.execArgv,
      ...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/tsprof'] : []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const [ready] = (await once(proc, 'message')) as [Msg]
  const ask = async (type: string, extra: Record<string, unknown> = {}) => {
    proc.send({ type, ...extra })
    for (;;) {
      const [m] = (await once(proc, 'message')) as [Msg]
      if (m.type === `${type}-done` || m.type === type) return m
    }
  }
  return { proc, ready, ask }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}

interface Target {
  url: string
  headers: Record<string, string>
}

/** One POST through `pool.dispatch` with a minimal handler: the load generator stays cheap. */
function post(pool: Pool, path: string, headers: string[], body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let status = 0
    const handler = {
      onConnect() {},
      onHeaders(statusCode: number) {
        status = statusCode
        return true
      },
      onData: () => true,
      onComplete: () => resolve(status),
      onError: reject,
    }
    pool.dispatch({ method: 'POST', path, headers, body }, handler)
  })
}

interface LoadResult {
  lat: number[]
  seconds: number
  errors: number
  /** CPU of this process (the load generator) over the measured window, in µs. */
  cpuMicros: number
}

async function load(
  target: Target,
  request: { path: string; body: string },
  seconds: number,
  concurrency: number,
  /** Runs between warm-up and the measured window (resets the children's CPU counters). */
  onMeasureStart?: () => Promise<void>,
): Promise<LoadResult> {
  const u = new URL(target.url)
  const pool = new Pool(u.origin, { connections: concurrency, pipelining: 1 })
  const headers = Object.entries({ ...target.headers, 'content-type': 'application/json' }).flat()
  const path = `${u.pathname.replace(/\/$/, '')}${request.path}`
  const lat: number[] = []
  let errors = 0
  const run = async (until: number, record: boolean) => {
    while (performance.now() < until) {
      const t0 = performance.now()
      const status = await post(pool, path, headers, request.body)
      if (status !== 200) errors += 1
      if (record) lat.push(performance.now() - t0)
    }
  }
  const warm = performance.now() + 1_000
  await Promise.all(Array.from({ length: concurrency }, () => run(warm, false)))
  await onMeasureStart?.()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const end = t0 + seconds * 1000
  await Promise.all(Array.from({ length: concurrency }, () => run(end, true)))
  const elapsed = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  await pool.close()
  return { lat, seconds: elapsed, errors, cpuMicros: cpu.user + cpu.system }
}

async function bigBodies(url: string, headers: Record<string, string>, concurrency: number, rounds: number) {
  const u = new URL(url)
  const pool = new Pool(u.origin, { connections: concurrency })
  const body = Buffer.alloc(MB, 'b')
  const path = `${u.pathname.replace(/\/$/, '')}/echo`
  let ok = 0
  let failed = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = 0; i < rounds; i++) {
        try {
          const res = await pool.request({ method: 'POST', path, headers, body })
          let n = 0
          for await (const c of res.body) n += (c as Buffer).length
          if (res.statusCode === 200 && n === MB) ok += 1
          else failed += 1
        } catch {
          failed += 1
        }
      }
    }),
  )
  await pool.close()
  return { ok, failed, total: concurrency * rounds, seconds: (performance.now() - t0) / 1000 }
}

type Child = Awaited<ReturnType<typeof start>>

const cpuMicros = (m: Msg) => (m.cpuMs as number) * 1000

/** Alternating direct / tunnel rounds against one local server; returns the printed lines. */
async function compare(
  title: string,
  server: Child,
  agent: Child,
  relay: Child,
  request: { path: string; body: string },
  directHeaders: Record<string, string>,
  opts: { rounds: number; seconds: number; concurrency: number },
): Promise<{ lines: string[]; ratio: number }> {
  const direct = { n: 0, s: 0, errors: 0, lat: [] as number[], gen: 0, server: 0 }
  const tunnel = { n: 0, s: 0, errors: 0, lat: [] as number[], gen: 0, server: 0, relay: 0, agent: 0 }
  const port = server.ready.port as number
  for (let round = 0; round < opts.rounds; round++) {
    const d = await load(
      { url: `http://127.0.0.1:${port}`, headers: directHeaders },
      request,
      opts.seconds,
      opts.concurrency,
      async () => void (await server.ask('reset')),
    )
    direct.server += cpuMicros(await server.ask('report'))
    Object.assign(direct, {
      n: direct.n + d.lat.length,
      s: direct.s + d.seconds,
      errors: direct.errors + d.errors,
      gen: direct.gen + d.cpuMicros,
      lat: direct.lat.concat(d.lat),
    })
    const t = await load(
      { url: agent.ready.url as string, headers: agent.ready.headers as Record<string, string> },
      request,
      opts.seconds,
      opts.concurrency,
      async () => void (await Promise.all([relay, agent, server].map((c) => c.ask('reset')))),
    )
    const [rc, ac, sc] = await Promise.all([relay, agent, server].map((c) => c.ask('report')))
    Object.assign(tunnel, {
      n: tunnel.n + t.lat.length,
      s: tunnel.s + t.seconds,
      errors: tunnel.errors + t.errors,
      gen: tunnel.gen + t.cpuMicros,
      server: tunnel.server + cpuMicros(sc!),
      relay: tunnel.relay + cpuMicros(rc!),
      agent: tunnel.agent + cpuMicros(ac!),
      lat: tunnel.lat.concat(t.lat),
    })
  }
  direct.lat.sort((a, b) => a - b)
  tunnel.lat.sort((a, b) => a - b)
  const f = (n: number, digits = 2) => n.toFixed(digits)
  const us = (total: number, n: number) => `${f(total / n, 0)} µs`
  const rate = (x: { n: number; s: number }) => x.n / x.s
  const ratio = rate(tunnel) / rate(direct)
  const p = (lat: number[], q: number) => percentile(lat, q)
  const lines = [
    `${title}: 1 KB JSON POST, ${opts.concurrency} concurrent, ${opts.rounds} rounds of ${opts.seconds} s each way`,
    `  direct : ${f(rate(direct), 0)} req/s  p50 ${f(p(direct.lat, 50))} ms  p99 ${f(p(direct.lat, 99))} ms  (${direct.n} req, ${direct.errors} errors)`,
    `  tunnel : ${f(rate(tunnel), 0)} req/s  p50 ${f(p(tunnel.lat, 50))} ms  p99 ${f(p(tunnel.lat, 99))} ms  (${tunnel.n} req, ${tunnel.errors} errors)`,
    `  throughput ratio tunnel/direct: ${f(ratio * 100, 1)} %  (target >= 60 %)`,
    `  added latency at ${opts.concurrency} concurrent: p50 +${f(p(tunnel.lat, 50) - p(direct.lat, 50))} ms, p99 +${f(p(tunnel.lat, 99) - p(direct.lat, 99))} ms`,
    `  CPU per request, direct: load generator ${us(direct.gen, direct.n)}, server ${us(direct.server, direct.n)}`,
    `  CPU per request, tunnel: load generator ${us(tunnel.gen, tunnel.n)}, relay ${us(tunnel.relay, tunnel.n)}, agent ${us(tunnel.agent, tunnel.n)}, server ${us(tunnel.server, tunnel.n)}`,
  ]
  return { lines, ratio }
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 4)
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2)
  const concurrency = 128
  const f = (n: number, d = 2) => n.toFixed(d)
  const mb = (n: unknown) => f((n as number) / MB, 1)
  builtEntry('tunnel-synth') // build once here, before the children look
  builtEntry('task-server')
  const echo = await start('echo')
  const taskapp = await start('taskapp')
  const relay = await start('relay')
  const relayUrl = relay.ready.url as string
  const agent = await start('agent', relayUrl, String(echo.ready.port), 'binary')
  const plain = await start('agent', relayUrl, String(echo.ready.port), 'plain')
  const taskAgent = await start('agent', relayUrl, String(taskapp.ready.port), 'binary', TASK_KEY)
  const children = [agent, plain, taskAgent, relay, echo, taskapp]
  try {
    const opts = { rounds, seconds, concurrency }
    const rollout = JSON.stringify({
      trace_correlation_id: 'trace-bench',
      env: { env_name: 'bench', seed: 3, config: { split: 'train', note: '' } },
      policy: {
        policy_name: 'p',
        config: { model: 'gpt-4o-mini', temperature: 0 },
        output_mode: 'tool_calls',
      },
      on_done: 'reset',
      safety: { max_time_s: 3600 },
    })
    const rolloutBody = rollout.replace('"note":""', `"note":"${'n'.repeat(1000 - rollout.length)}"`)
    const task = await compare(
      'createTaskApp POST /rollout (what the tunnel fronts)',
      taskapp,
      taskAgent,
      relay,
      { path: '/rollout', body: rolloutBody },
      { 'x-api-key': TASK_KEY },
      opts,
    )
    console.log(task.lines.join('\n'))
    const bare = await compare(
      'bare node:http echo (worst case: a server doing almost nothing)',
      echo,
      agent,
      relay,
      { path: '/json', body: JSON.stringify({ data: 'x'.repeat(1000 - 12) }) },
      {},
      opts,
    )
    console.log(bare.lines.join('\n'))

    const echoTarget = { url: `http://127.0.0.1:${echo.ready.port as number}`, headers: {} }
    const small = { path: '/json', body: JSON.stringify({ data: 'x'.repeat(1000 - 12) }) }
    const singleDirect = await load(echoTarget, small, 2, 1)
    const tunnelTarget = {
      url: agent.ready.url as string,
      headers: agent.ready.headers as Record<string, string>,
    }
    const single = await load(tunnelTarget, small, 2, 1)
    const p50 = (r: LoadResult) =>
      percentile(
        r.lat.sort((a, b) => a - b),
        50,
      )
    console.log(
      `added latency at concurrency 1 (echo): p50 +${f(p50(single) - p50(singleDirect), 3)} ms (direct ${f(p50(singleDirect), 3)} ms, tunnel ${f(p50(single), 3)} ms)  (target < 1 ms)`,
    )

    if (process.env.BENCH_SKIP_BIG) return
    for (const [name, a] of [
      ['binary frames (negotiated)', agent],
      ['reference base64 JSON frames', plain],
    ] as const) {
      await relay.ask('reset', { rss: true })
      await a.ask('reset', { rss: true })
      const big = await bigBodies(
        a.ready.url as string,
        a.ready.headers as Record<string, string>,
        concurrency,
        2,
      )
      const r = await relay.ask('report')
      const g = await a.ask('report')
      console.log(
        `${concurrency} concurrent 1 MB bodies echoed, ${name}: ${big.ok}/${big.total} ok, ${f((big.total * 2) / big.seconds, 1)} MB/s`,
      )
      console.log(
        `  relay RSS peak ${mb(r.peak)} MB (+${mb((r.peak as number) - (r.baseline as number))} MB); bytes in transit peak ${mb(r.peakMemoryInUse)} MB of a ${mb(r.budget)} MB budget; CPU ${f(r.cpuMs as number, 0)} ms`,
      )
      console.log(
        `  agent RSS peak ${mb(g.peak)} MB (+${mb((g.peak as number) - (g.baseline as number))} MB); CPU ${f(g.cpuMs as number, 0)} ms`,
      )
    }
    console.log(`  (buffering whole bodies would hold >= ${concurrency} MB in each process)`)
  } finally {
    for (const c of children) c.proc.send({ type: 'exit' })
  }
}

if (role) await child()
else await main()
