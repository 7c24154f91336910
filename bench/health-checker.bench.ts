/**
 * Readiness detection: how long after a server's `listen` callback does the waiter see it
 * healthy? 200 runs of `waitForHealthy` against a baseline written here: a fixed-interval poller
 * (probe, then sleep 500 ms), the shape of synth-ai's Python loop. Both are measured in this run.
 *
 * Scenario per run (the in-process start-up): the waiter starts when `listen()` is called (as a
 * caller does right after starting a server), the socket binds, and the app answers 503 until its start-up work is done `READY_AFTER_MS` after
 * the listen callback (0 = ready at once), then 200 `{ healthy: true }`.
 *
 * Run: pnpm bench health-checker
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { waitForHealthy } from '@taskapp/health-checker'

const RUNS = 200
const BASELINE_BATCH = 5

async function fixedIntervalPoller(url: string, intervalMs: number): Promise<void> {
  for (;;) {
    try {
      const res = await request(url, { headers: { connection: 'close' } })
      await res.body.dump()
      if (res.statusCode === 200) return
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((r) => probe.close(() => r()))
  return port
}

async function oneRun(readyAfterMs: number, waiter: (url: string) => Promise<unknown>): Promise<number> {
  const port = await freePort()
  let readyAt = Number.POSITIVE_INFINITY
  const server: Server = createServer((_req, res) => {
    const ready = performance.now() >= readyAt
    res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ healthy: ready }))
  })
  let listenedAt = 0
  server.listen(port, '127.0.0.1', () => {
    listenedAt = performance.now()
    readyAt = listenedAt + readyAfterMs
  })
  // The waiter starts together with the server, as a caller does right after starting it.
  await waiter(`http://127.0.0.1:${port}/health`)
  const elapsed = performance.now() - listenedAt
  server.closeAllConnections()
  await new Promise<void>((r) => server.close(() => r()))
  return elapsed
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
function p95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]!
}

async function measure(readyAfterMs: number) {
  const ours: number[] = []
  for (let i = 0; i < RUNS; i++)
    ours.push(await oneRun(readyAfterMs, (u) => waitForHealthy(u, { timeoutMs: 10_000 })))
  // The baseline mostly sleeps; batches of concurrent runs keep the bench short without
  // changing what each run measures.
  const base: number[] = []
  for (let i = 0; i < RUNS; i += BASELINE_BATCH) {
    base.push(
      ...(await Promise.all(
        Array.from({ length: BASELINE_BATCH }, () =>
          oneRun(readyAfterMs, (u) => fixedIntervalPoller(u, 500)),
        ),
      )),
    )
  }
  return { ours, base }
}

const rows: string[] = []
for (const readyAfterMs of [0, 3, 20]) {
  const { ours, base } = await measure(readyAfterMs)
  const m = median(ours)
  const b = median(base)
  rows.push(
    `| ${readyAfterMs} ms | ${m.toFixed(2)} ms | ${p95(ours).toFixed(2)} ms | ${b.toFixed(1)} ms | ${(b / m).toFixed(0)}x |`,
  )
}
console.log(`health-checker: listen callback → healthy seen, ${RUNS} runs each (median target < 5 ms)`)
console.log(
  '| app ready after listen | waitForHealthy median | p95 | fixed 500 ms poller median | speed-up |',
)
console.log('|---|---|---|---|---|')
for (const r of rows) console.log(r)
