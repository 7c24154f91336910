/**
 * The well-behaved tenant's load: small JSON POSTs at a fixed rate, open loop (each request leaves
 * on its schedule whether or not the ones before have answered, so a slow phase cannot hide its
 * latency by sending less), measured from dispatch to the last byte of the response.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { Pool } from 'undici'
import { count } from './raw-http'
import type { Tally } from './raw-http'

export interface VictimTarget {
  url: string
  headers: Record<string, string>
}

export interface LoadResult {
  sent: number
  ok: number
  /** Latency of every request that succeeded (2xx with its whole body), in ms, sorted. */
  lat: number[]
  /** Outcomes other than 2xx, by status (and problem code) or error code. */
  failures: Tally
  /** How late requests left against their schedule (the load generator's own lag), p99 in ms. */
  sendLagP99Ms: number
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** A pool towards the victim's public URL: kept-alive connections, 10 s to answer, else a failure. */
export function victimPool(target: VictimTarget): Pool {
  return new Pool(new URL(target.url).origin, {
    connections: 32,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  })
}

const BODY = JSON.stringify({ trace_correlation_id: 'victim', env: { seed: 1 }, note: 'x'.repeat(160) })

async function one(pool: Pool, target: VictimTarget, path: string): Promise<{ ms: number; outcome: string }> {
  const t0 = performance.now()
  try {
    const res = await pool.request({
      method: 'POST',
      path,
      headers: { ...target.headers, 'content-type': 'application/json' },
      body: BODY,
    })
    const text = await res.body.text()
    const ms = performance.now() - t0
    if (res.statusCode >= 200 && res.statusCode < 300 && text === BODY) return { ms, outcome: 'ok' }
    let code = ''
    try {
      code = (JSON.parse(text) as { code?: string }).code ?? ''
    } catch {
      // not a problem+json answer
    }
    return { ms, outcome: `${res.statusCode}${code ? ` ${code}` : ''}` }
  } catch (err) {
    return { ms: performance.now() - t0, outcome: `error ${(err as { code?: string }).code ?? 'unknown'}` }
  }
}

/** `rate` requests a second for `seconds` through `pool`; resolves when every one has ended. */
export async function victimLoad(
  pool: Pool,
  target: VictimTarget,
  seconds: number,
  rate = 10,
): Promise<LoadResult> {
  const path = `${new URL(target.url).pathname.replace(/\/$/, '')}/rollout`
  const n = Math.round(seconds * rate)
  const lags: number[] = []
  const pending: Promise<{ ms: number; outcome: string }>[] = []
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate
    await delay(Math.max(0, due - performance.now())) // pacing, not waiting for an event
    lags.push(performance.now() - due)
    pending.push(one(pool, target, path))
  }
  const results = await Promise.all(pending)
  const failures: Tally = {}
  const lat: number[] = []
  for (const r of results) {
    if (r.outcome === 'ok') lat.push(r.ms)
    else count(failures, r.outcome)
  }
  lat.sort((a, b) => a - b)
  lags.sort((a, b) => a - b)
  return { sent: n, ok: lat.length, lat, failures, sendLagP99Ms: percentile(lags, 99) }
}
