/**
 * Start-to-ready of `InProcessTaskApp.start()` in `local` mode: the time from the call until it
 * resolves (options checked, app built from a config, port bound, `/health` answered healthy with
 * the key). Median of 100 runs, next to a baseline measured in the same run that does the bare
 * minimum by hand: `createTaskApp(config)`, `http.createServer(app).listen(0)`, then GET /health
 * (with the key) until the first 200. Runs alternate between the two so drift hits both alike.
 *
 * Also printed: the same for a ready-made request listener (`app` option) against a bare
 * `createServer(listener).listen(0)` + first GET, and the median time of `stop()`.
 *
 * Run: pnpm bench in-process
 */
import { createServer, request } from 'node:http'
import type { RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'
import { InProcessTaskApp } from '@taskapp/in-process'
import { createTaskApp } from '@taskapp/task-server'
import type { TaskAppConfig } from '@taskapp/task-server'

const RUNS = 100
const WARMUP = 10
const KEY = 'bench-key-0123456789'

const config: TaskAppConfig = {
  appId: 'bench',
  name: 'Bench',
  description: 'start-up benchmark',
  provideTasksetDescription: () => ({}),
  provideTaskInstances: () => [],
  rollout: (req) => ({ trace_correlation_id: req.trace_correlation_id, reward_info: { outcome_reward: 1 } }),
}

const listener: RequestListener = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end('{"healthy":true}')
}

function getStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { agent: false, headers: { 'x-api-key': KEY, authorization: `Bearer ${KEY}` } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/** By hand: build, listen on port 0, GET /health until 200. Returns ms to ready, then closes. */
async function baseline(build: () => RequestListener): Promise<number> {
  const t0 = performance.now()
  const server = createServer(build())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`
  while ((await getStatus(url)) !== 200) {
    // poll again at once: the app is ready within a tick or two
  }
  const elapsed = performance.now() - t0
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return elapsed
}

async function inProcess(
  options: { config: TaskAppConfig } | { app: RequestListener },
): Promise<[number, number]> {
  const t0 = performance.now()
  const app = await InProcessTaskApp.start({
    ...options,
    apiKey: KEY,
    port: 0,
    tunnel: { mode: 'local' },
    handleSignals: false,
  })
  const ready = performance.now() - t0
  const t1 = performance.now()
  await app.stop()
  return [ready, performance.now() - t1]
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

function p90(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))]!
}

const buildConfigApp = (): RequestListener => createTaskApp({ ...config, apiKeys: [KEY] })

for (let i = 0; i < WARMUP; i++) {
  await baseline(buildConfigApp)
  await inProcess({ config })
  await baseline(() => listener)
  await inProcess({ app: listener })
}

const results = {
  base: [] as number[],
  ours: [] as number[],
  stop: [] as number[],
  baseL: [] as number[],
  oursL: [] as number[],
}
for (let i = 0; i < RUNS; i++) {
  results.base.push(await baseline(buildConfigApp))
  const [ready, stopped] = await inProcess({ config })
  results.ours.push(ready)
  results.stop.push(stopped)
  results.baseL.push(await baseline(() => listener))
  results.oursL.push((await inProcess({ app: listener }))[0])
}

const fmt = (ms: number): string => `${ms.toFixed(2)} ms`
const row = (name: string, ours: number[], base: number[]): string =>
  `${name.padEnd(44)} median ${fmt(median(ours)).padStart(9)} (p90 ${fmt(p90(ours))})  ` +
  `baseline ${fmt(median(base)).padStart(9)} (p90 ${fmt(p90(base))})  ratio ${(median(ours) / median(base)).toFixed(2)}x`

console.log(`InProcessTaskApp.start() to ready, local mode, ${RUNS} runs each (node ${process.version})`)
console.log(row('config (createTaskApp) vs by-hand listen+GET', results.ours, results.base))
console.log(row('ready-made listener vs by-hand listen+GET', results.oursL, results.baseL))
console.log(
  `${'stop() (config app)'.padEnd(44)} median ${fmt(median(results.stop)).padStart(9)} (p90 ${fmt(p90(results.stop))})`,
)
