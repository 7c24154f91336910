/**
 * SynthTunnel benchmark: 1 KB JSON POSTs at 128 concurrency, direct to the local server vs through
 * relay + agent on loopback (throughput ratio, added p50/p99 latency), then peak RSS of the relay
 * and the agent during 128 concurrent 1 MB bodies. Relay, agent and local server each run in
 * their own process, like in production; the load generator runs here.
 *
 * Fairness: direct and tunnel are measured in the same run, by the same load generator (an undici
 * Pool with the same 128 connections, pipelining 1, same body), one after the other.
 *
 * Machine limits: on a 2-core machine the tunnel case runs 4 busy processes (load generator,
 * relay, agent, local server) on 2 cores, the direct case only 2. A direct request costs the
 * generator and the local server ~75 µs of CPU together; a tunneled one adds the relay (HTTP
 * server parse + response + frames, ~90 µs) and the agent (HTTP client call + frames, ~75 µs).
 * So with all four processes sharing two cores the tunnel is limited to roughly 75 / 240 ≈ 30 % of
 * direct; 60 % would need relay + agent under ~50 µs together. The figure that transfers to a
 * deployment (relay and agent on their own cores) is the CPU per tunneled request.
 *
 * Run: `pnpm bench tunnel-synth` (env BENCH_SECONDS=5 to change the measuring window,
 * BENCH_SKIP_BIG=1 to skip the 1 MB part, BENCH_PROF=1 for --cpu-prof of the children in /tmp/tsprof).
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { Pool } from 'undici'

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

async function child(): Promise<void> {
  const rss = sampler()
  const send = (m: Msg) => process.send?.(m)
  let extra: () => Record<string, unknown> = () => ({})
  if (role === 'local') {
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
  } else if (role === 'relay') {
    const { createRelayServer } = await import('@taskapp/tunnel-synth/relay')
    const relay = await createRelayServer({ apiKeys: ['bench'], maxInflight: 256, logger: benchLogger })
    extra = () => ({ peakMemoryInUse: relay.stats().peakMemoryInUse, budget: 64 * MB })
    send({ type: 'ready', url: relay.url })
  } else if (role === 'agent') {
    const { synthTunnel } = await import('@taskapp/tunnel-synth')
    const [relayUrl, port, frames] = [process.argv[3]!, Number(process.argv[4]), process.argv[5]]
    const tunnel = await synthTunnel({
      backendUrl: relayUrl,
      apiKey: 'bench',
      env: {},
      localApiKeys: [],
      maxInflight: 256,
      binaryFrames: frames !== 'plain',
      logger: benchLogger,
    }).open({
      localUrl: `http://127.0.0.1:${port}`,
      host: '127.0.0.1',
      port,
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

async function load(
  url: string,
  headers: Record<string, string>,
  seconds: number,
  concurrency: number,
  /** Runs between warm-up and the measured window (resets the children's CPU counters). */
  onMeasureStart?: () => Promise<void>,
) {
  const u = new URL(url)
  const pool = new Pool(u.origin, { connections: concurrency, pipelining: 1 })
  const body = JSON.stringify({ data: 'x'.repeat(1000 - 12) })
  const path = `${u.pathname.replace(/\/$/, '')}/json`
  const lat: number[] = []
  let errors = 0
  const run = async (until: number, record: boolean) => {
    while (performance.now() < until) {
      const t0 = performance.now()
      const res = await pool.request({
        method: 'POST',
        path,
        headers: { ...headers, 'content-type': 'application/json' },
        body,
      })
      await res.body.dump()
      if (res.statusCode !== 200) errors += 1
      if (record) lat.push(performance.now() - t0)
    }
  }
  const warm = performance.now() + 1_000
  await Promise.all(Array.from({ length: concurrency }, () => run(warm, false)))
  await onMeasureStart?.()
  const t0 = performance.now()
  const end = t0 + seconds * 1000
  await Promise.all(Array.from({ length: concurrency }, () => run(end, true)))
  const elapsed = (performance.now() - t0) / 1000
  await pool.close()
  lat.sort((a, b) => a - b)
  return {
    rps: lat.length / elapsed,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    errors,
    n: lat.length,
  }
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

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 5)
  const concurrency = 128
  const f = (n: number, d = 2) => n.toFixed(d)
  const mb = (n: unknown) => f((n as number) / MB, 1)
  const local = await start('local')
  const port = local.ready.port as number
  const relay = await start('relay')
  const agent = await start('agent', relay.ready.url as string, String(port), 'binary')
  const plain = await start('agent', relay.ready.url as string, String(port), 'plain')
  const children = [agent, plain, relay, local]
  try {
    const tunnelUrl = agent.ready.url as string
    const headers = agent.ready.headers as Record<string, string>

    const direct = await load(`http://127.0.0.1:${port}`, {}, seconds, concurrency)
    // CPU is counted over the measured window only (not the warm-up), divided by its requests.
    const tunnel = await load(tunnelUrl, headers, seconds, concurrency, async () => {
      await Promise.all([relay.ask('reset'), agent.ask('reset')])
    })
    const [rc, ac] = [await relay.ask('report'), await agent.ask('report')]
    console.log(
      `1 KB JSON POST, ${concurrency} concurrent, ${seconds} s each; relay, agent, local server and load generator in separate processes on loopback`,
    )
    console.log(
      `  direct : ${f(direct.rps, 0)} req/s  p50 ${f(direct.p50)} ms  p99 ${f(direct.p99)} ms  (${direct.n} req, ${direct.errors} errors)`,
    )
    console.log(
      `  tunnel : ${f(tunnel.rps, 0)} req/s  p50 ${f(tunnel.p50)} ms  p99 ${f(tunnel.p99)} ms  (${tunnel.n} req, ${tunnel.errors} errors)`,
    )
    console.log(
      `  throughput ratio tunnel/direct: ${f((tunnel.rps / direct.rps) * 100, 1)} %  (target >= 60 %)`,
    )
    console.log(
      `  added latency at 128 concurrent: p50 +${f(tunnel.p50 - direct.p50)} ms, p99 +${f(tunnel.p99 - direct.p99)} ms`,
    )
    console.log(
      `  CPU per tunneled request: relay ${f(((rc.cpuMs as number) * 1000) / tunnel.n, 0)} µs, agent ${f(((ac.cpuMs as number) * 1000) / tunnel.n, 0)} µs`,
    )
    const singleDirect = await load(`http://127.0.0.1:${port}`, {}, 2, 1)
    const single = await load(tunnelUrl, headers, 2, 1)
    console.log(
      `  added latency at concurrency 1: p50 +${f(single.p50 - singleDirect.p50, 3)} ms (direct ${f(singleDirect.p50, 3)} ms, tunnel ${f(single.p50, 3)} ms)  (target < 1 ms)`,
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
