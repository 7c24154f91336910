/**
 * Async jobs through the Redis job store against the memory store, in the same run: create a job
 * (`POST /rollout?mode=async`) and poll it (`GET /rollouts/:id`) until it succeeded, 16 such loops
 * at once over 127.0.0.1, in alternating 500 ms slices per store. Redis is a private redis-server
 * started here on a Unix socket in a temporary folder (the machine's own Redis is not used).
 *
 * Run: pnpm bench task-server   (or pnpm bench job-store)
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import type * as TaskServerModule from '@taskapp/task-server'
import { builtEntry } from './lib/built-package'

const { createTaskApp, createMemoryJobStore, createRedisJobStore } = (await import(
  builtEntry('task-server').href
)) as typeof TaskServerModule

const KEY = 'sk-env-bench-0123456789abcdef'
const LOOPS = 16
const SLICE_MS = 500
const SLICES = 12
const WARMUP_MS = 1000
const body = JSON.stringify({
  trace_correlation_id: 'trace-bench',
  env: { env_name: 'bench', seed: 1, config: {} },
  policy: { policy_name: 'p', config: { model: 'm' } },
})

async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), 'taskapp-bench-redis-'))
  const socket = join(dir, 'redis.sock')
  const child = spawn(
    'redis-server',
    ['--port', '0', '--unixsocket', socket, '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)))
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
      if (/ready to accept connections/i.test(out)) resolve()
    })
  })
  return {
    url: `unix://${socket}`,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

async function serve(jobStore: TaskServerModule.JobStore) {
  const app = createTaskApp({
    appId: 'bench',
    name: 'Bench',
    description: 'bench',
    apiKeys: [KEY],
    jobStore,
    limits: { maxJobsPerOwner: Number.POSITIVE_INFINITY },
    provideTasksetDescription: () => ({ splits: ['train'] }),
    provideTaskInstances: (seeds) =>
      seeds.map((seed) => ({ task: { id: 'b', name: 'B' }, task_metadata: { seed } })),
    rollout: (request) => ({
      trace_correlation_id: request.trace_correlation_id,
      reward_info: { outcome_reward: 1 },
    }),
  })
  await app.lifecycle.ready()
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const { port } = server.address() as { port: number }
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: LOOPS })
  return {
    pool,
    async close() {
      await pool.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await app.lifecycle.close()
    },
  }
}

/** One create + poll-until-succeeded cycle. */
async function cycle(pool: Pool): Promise<void> {
  const headers = { 'x-api-key': KEY, 'content-type': 'application/json' }
  const made = await pool.request({ method: 'POST', path: '/rollout?mode=async', headers, body })
  const { id } = (await made.body.json()) as { id: string }
  for (;;) {
    const res = await pool.request({ method: 'GET', path: `/rollouts/${id}`, headers })
    const { status } = (await res.body.json()) as { status: string }
    if (status === 'succeeded') return
    if (status !== 'pending' && status !== 'running') throw new Error(`job ${id} ended ${status}`)
  }
}

/** Cycles per second over `ms`. */
async function slice(pool: Pool, ms: number): Promise<number> {
  const end = performance.now() + ms
  let done = 0
  const start = performance.now()
  await Promise.all(
    Array.from({ length: LOOPS }, async () => {
      while (performance.now() < end) {
        await cycle(pool)
        done += 1
      }
    }),
  )
  return (done * 1000) / (performance.now() - start)
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0

const redis = await startRedis()
const memoryStore = createMemoryJobStore({ maxJobs: 100_000, ttlMs: 60_000 })
const redisStore = await createRedisJobStore({ redis: redis.url, maxJobs: 100_000, ttlMs: 60_000 })
const memory = await serve(memoryStore)
const onRedis = await serve(redisStore)
try {
  await slice(memory.pool, WARMUP_MS)
  await slice(onRedis.pool, WARMUP_MS)
  const mem: number[] = []
  const red: number[] = []
  for (let i = 0; i < SLICES; i++) {
    // Which store goes first alternates, so neither always follows the other's garbage.
    if (i % 2 === 0) mem.push(await slice(memory.pool, SLICE_MS))
    red.push(await slice(onRedis.pool, SLICE_MS))
    if (i % 2 === 1) mem.push(await slice(memory.pool, SLICE_MS))
  }
  const ratios = mem.map((m, i) => (red[i] ?? 0) / m)
  console.log(
    `job store: create + poll to completion, ${LOOPS} loops, ${SLICES} alternating ${SLICE_MS} ms slices`,
  )
  console.log(`  memory store  ${median(mem).toFixed(0)} jobs/s (median slice)`)
  console.log(`  Redis store   ${median(red).toFixed(0)} jobs/s (median slice)`)
  console.log(`  Redis / memory: ${(median(ratios) * 100).toFixed(1)} % (median of slice ratios)`)
} finally {
  await memory.close()
  await onRedis.close()
  await memoryStore.close()
  await redisStore.close()
  await redis.stop()
}
