/**
 * The load generator of the tunnel-synth benchmark: an undici Pool per target (pipelining 1), a
 * minimal dispatch handler so the generator stays cheap, a warm-up before each measured window,
 * and the 1 MB body echo.
 */
import { Pool } from 'undici'

const MB = 1024 * 1024

/** Where the load goes: a base URL and the headers every request carries. */
export interface Target {
  url: string
  headers: Record<string, string>
}

/** What one measured window gave. */
export interface LoadResult {
  /** Latency of each request, in ms. */
  lat: number[]
  seconds: number
  errors: number
}

/** The `p`-th percentile of ascending `sorted`. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}

/** One POST through `pool.dispatch` with a minimal handler; resolves with the status. */
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

/**
 * `concurrency` loops of POSTs to `target` for a warm-up of `warmSeconds`, then `onMeasureStart`
 * (resets the children's counters), then the measured window of `seconds`.
 */
export async function load(
  target: Target,
  request: { path: string; body: string },
  opts: { seconds: number; warmSeconds: number; concurrency: number },
  onMeasureStart?: () => Promise<void>,
): Promise<LoadResult> {
  const u = new URL(target.url)
  const pool = new Pool(u.origin, { connections: opts.concurrency, pipelining: 1 })
  const headers = Object.entries({ ...target.headers, 'content-type': 'application/json' }).flat()
  const path = `${u.pathname.replace(/\/$/, '')}${request.path}`
  const lat: number[] = []
  let errors = 0
  const run = async (until: number, record: boolean) => {
    while (performance.now() < until) {
      const t0 = performance.now()
      const status = await post(pool, path, headers, request.body).catch(() => 0)
      if (status !== 200) errors += 1
      if (record) lat.push(performance.now() - t0)
    }
  }
  const loops = (until: number, record: boolean) =>
    Promise.all(Array.from({ length: opts.concurrency }, () => run(until, record)))
  await loops(performance.now() + opts.warmSeconds * 1000, false)
  errors = 0
  await onMeasureStart?.()
  const t0 = performance.now()
  await loops(t0 + opts.seconds * 1000, true)
  const seconds = (performance.now() - t0) / 1000
  await pool.close()
  return { lat, seconds, errors }
}

/** `concurrency` loops each echoing `rounds` 1 MB bodies through `target`'s `/echo`. */
export async function bigBodies(target: Target, concurrency: number, rounds: number) {
  const u = new URL(target.url)
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
          const res = await pool.request({ method: 'POST', path, headers: target.headers, body })
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
  const seconds = (performance.now() - t0) / 1000
  await pool.close()
  return { ok, failed, total: concurrency * rounds, seconds, mbPerSecond: (ok * 2) / seconds }
}
