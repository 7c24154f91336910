/**
 * Cost of the relay's admin counters on the request path: the same relay + agent + local server
 * on loopback, without an admin key (nothing counted) and with one (every answer counted by status
 * and code, bytes, per-tunnel rolling buckets), alternated in one run, 3 rounds each. Prints
 * requests per second of each and the ratio (admin / plain); plus the time of one /metrics scrape
 * and one status.json with 200 leases.
 * Run: `pnpm bench relay-admin` (env BENCH_REQUESTS=3000, BENCH_CONCURRENCY=16).
 */
import { createServer } from 'node:http'
import { Agent, request } from 'undici'
import { synthTunnel } from '@taskapp/tunnel-synth'
import { createRelayServer } from '@taskapp/tunnel-synth/relay'
import type { RelayServerOptions } from '@taskapp/tunnel-synth/relay'

const N = Number(process.env.BENCH_REQUESTS ?? 3000)
const C = Number(process.env.BENCH_CONCURRENCY ?? 16)
const ADMIN_KEY = 'bench-admin-key-0123456789'

async function run(options: RelayServerOptions): Promise<number> {
  const app = createServer((_req, res) => res.end('{"ok":true}'))
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r))
  const port = (app.address() as { port: number }).port
  const relay = await createRelayServer({ apiKeys: ['bench-key'], ...options })
  const tunnel = await synthTunnel({
    backendUrl: relay.url,
    apiKey: 'bench-key',
    localApiKeys: [],
    env: {},
  }).open({
    localUrl: `http://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
  })
  const dispatcher = new Agent({ connections: C })
  let next = 0
  const worker = async () => {
    while (next++ < N) {
      const res = await request(`${tunnel.url}/x`, { headers: tunnel.headers, dispatcher })
      await res.body.text()
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: C }, worker))
  const rps = N / ((performance.now() - t0) / 1000)
  await dispatcher.close()
  await tunnel.close()
  await relay.close()
  app.close()
  return rps
}

async function scrapeTimes(): Promise<{ metricsMs: number; statusMs: number }> {
  const relay = await createRelayServer({ apiKeys: ['bench-key'], adminKey: ADMIN_KEY })
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`${relay.url}/api/v1/synthtunnel/leases`, {
      method: 'POST',
      headers: { authorization: 'Bearer bench-key' },
      body: '{}',
    })
    await res.text()
  }
  const time = async (path: string) => {
    const t0 = performance.now()
    for (let i = 0; i < 20; i++)
      await (await fetch(`${relay.url}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text()
    return (performance.now() - t0) / 20
  }
  const metricsMs = await time('/metrics')
  const statusMs = await time('/admin/status.json')
  await relay.close()
  return { metricsMs, statusMs }
}

const plain: number[] = []
const admin: number[] = []
await run({}) // warm-up
for (let round = 0; round < 3; round++) {
  plain.push(await run({}))
  admin.push(await run({ adminKey: ADMIN_KEY }))
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
console.log(`requests: ${N} per round, concurrency ${C}, 3 rounds alternated`)
console.log(
  `plain relay:      ${plain.map((x) => x.toFixed(0)).join(', ')} req/s (median ${median(plain).toFixed(0)})`,
)
console.log(
  `with admin key:   ${admin.map((x) => x.toFixed(0)).join(', ')} req/s (median ${median(admin).toFixed(0)})`,
)
console.log(`ratio admin/plain (medians): ${(median(admin) / median(plain)).toFixed(3)}`)
const { metricsMs, statusMs } = await scrapeTimes()
console.log(
  `200 leases: /metrics ${metricsMs.toFixed(2)} ms, /admin/status.json ${statusMs.toFixed(2)} ms (mean of 20)`,
)
