import { createServer } from 'node:http'
import { Pool } from 'undici'
import { createTaskApp } from '@taskapp/task-server'
import { synthTunnel } from '@taskapp/tunnel-synth'
import { createRelayServer } from '@taskapp/tunnel-synth/relay'
const KEY = 'sk-bench-0123456789abcdef'
const app = createTaskApp({ appId: 'b', name: 'B', description: 'd', apiKeys: [KEY], provideTasksetDescription: () => ({}), provideTaskInstances: () => [],
  rollout: (r) => ({ trace_correlation_id: r.trace_correlation_id, reward_info: { outcome_reward: 1 } }) })
const server = createServer(app); server.listen(0, '127.0.0.1'); await new Promise(r => server.once('listening', r))
const port = (server.address() as any).port
const relay = await createRelayServer({ apiKeys: ['k'], maxInflight: 512 })
const mode = process.argv[2]
const t = await synthTunnel({ backendUrl: relay.url, apiKey: 'k', env: {}, localApiKeys: [KEY], maxInflight: 256 }).open({ localUrl: `http://127.0.0.1:${port}`, host: '127.0.0.1', port, ...(mode === 'mem' ? { server } : {}) })
const body = JSON.stringify({ trace_correlation_id: 't', env: { env_name: 'b', seed: 3, config: {} }, policy: { policy_name: 'p', config: {}, output_mode: 'tool_calls' }, on_done: 'reset', safety: { max_time_s: 3600 } })
const u = new URL(t.url); const pool = new Pool(u.origin, { connections: 32 })
let n = 0; const t0 = performance.now(); const c0 = process.cpuUsage()
await Promise.all(Array.from({ length: 32 }, async () => { while (performance.now() - t0 < 3000) { const r = await pool.request({ method: 'POST', path: u.pathname + '/rollout', headers: { ...t.headers, 'content-type': 'application/json' }, body }); await r.body.text(); if (r.statusCode !== 200) console.log(r.statusCode); n++ } }))
const c = process.cpuUsage(c0)
console.log(mode, n / 3, 'req/s', ((c.user + c.system) / n).toFixed(0), 'µs/req (all in one proc)', t.stats())
await pool.close(); await t.close(); await relay.close(); server.close()
