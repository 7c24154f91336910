import { Readable } from 'node:stream'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { Agent, request } from 'undici'
import { expect, onTestFinished, test } from 'vitest'
import { forkFixture, nextEvent, startLocalServer } from './test-helpers'
import type { SynthTunnelStats } from './agent/agent'

const MB = 1024 * 1024
const SIZE = 50 * MB
/**
 * Peak RSS growth allowed in the relay+agent process while 50 MB go through it each way.
 *
 * Any Node process that moves data this fast shows transient growth from dead chunk buffers: V8
 * lets up to 64 MB of external (Buffer) memory pile up before it collects
 * (kExternalAllocationSoftLimit). We measure ~35-60 MB here. Buffering the bodies in relay and
 * agent would add at least 100 MB of live data on top of that slack (~167 MB as base64 text), so a
 * 96 MB bound separates the two. Two sharper checks follow: the relay's own count of bytes in
 * transit, and live heap + external memory after a forced GC (nothing retained).
 */
const RSS_GROWTH_BOUND = 96 * MB
const RELAY_IN_TRANSIT_BOUND = 4 * MB
const RETAINED_BOUND = 8 * MB

async function startChild(localPort: number) {
  const child = forkFixture('stream-child.ts', [String(localPort)], ['--expose-gc'])
  const ready = await nextEvent<{ url: string; headers: Record<string, string> }>(child, 'message', 30_000)
  const ask = async <T>(type: string, reply: string): Promise<T> => {
    const answer = new Promise<T>((resolve) => {
      const on = (m: { type: string }) => {
        if (m.type === reply) {
          child.off('message', on)
          resolve(m as T)
        }
      }
      child.on('message', on)
    })
    child.send({ type })
    return answer
  }
  return { child, ...ready, ask }
}

test(
  'a 50 MB upload and a 50 MB download stream through relay + agent with bounded memory',
  { timeout: 120_000 },
  async () => {
    let uploadHash = ''
    let downloadHash = ''
    await using local = await startLocalServer(async (req, res) => {
      if (req.url === '/upload') {
        const h = createHash('sha256')
        let n = 0
        for await (const c of req) {
          h.update(c as Buffer)
          n += (c as Buffer).length
        }
        uploadHash = h.digest('hex')
        res.end(JSON.stringify({ n, hash: uploadHash }))
        return
      }
      const h = createHash('sha256')
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      for (let sent = 0; sent < SIZE;) {
        const chunk = randomBytes(Math.min(256 * 1024, SIZE - sent))
        h.update(chunk)
        sent += chunk.length
        if (!res.write(chunk)) await once(res, 'drain')
      }
      downloadHash = h.digest('hex')
      res.end()
    })
    const child = await startChild(local.port)
    const dispatcher = new Agent()
    onTestFinished(() => dispatcher.close())
    const stats = await child.ask<{ baseline: number }>('reset', 'reset-done')

    const sent = createHash('sha256')
    async function* upload() {
      for (let i = 0; i < SIZE; i += MB) {
        const chunk = randomBytes(MB)
        sent.update(chunk)
        yield chunk
      }
    }
    const up = await request(`${child.url}/upload`, {
      method: 'POST',
      headers: child.headers,
      body: Readable.from(upload()),
      dispatcher,
    })
    expect(up.statusCode).toBe(200)
    expect(await up.body.json()).toEqual({ n: SIZE, hash: sent.digest('hex') })

    const down = await request(`${child.url}/download`, { headers: child.headers, dispatcher })
    expect(down.statusCode).toBe(200)
    const got = createHash('sha256')
    let n = 0
    for await (const c of down.body) {
      got.update(c as Buffer)
      n += (c as Buffer).length
    }
    expect(n).toBe(SIZE)
    expect(got.digest('hex')).toBe(downloadHash)

    const report = await child.ask<{
      baseline: number
      peak: number
      retained: number
      relayPeakMemoryInUse: number
      agent: SynthTunnelStats
    }>('report', 'report')
    const growth = report.peak - stats.baseline
    console.log(
      `stream test: relay+agent RSS baseline ${(stats.baseline / MB).toFixed(1)} MB, peak ${(report.peak / MB).toFixed(1)} MB, growth ${(growth / MB).toFixed(1)} MB for 2 × 50 MB, live memory retained after GC ${(report.retained / MB).toFixed(1)} MB; relay peak bytes in transit ${(report.relayPeakMemoryInUse / MB).toFixed(2)} MB`,
    )
    expect(growth).toBeLessThan(RSS_GROWTH_BOUND)
    expect(report.retained).toBeLessThan(RETAINED_BOUND)
    expect(report.relayPeakMemoryInUse).toBeLessThan(RELAY_IN_TRANSIT_BOUND)
    // the agent's own bounds: request bodies under maxBufferedBytes (4 MiB here) plus what one
    // socket read can still deliver after the pause; its send queue near the 1 MiB high-water mark
    console.log(
      `stream test: agent peak request bytes held ${(report.agent.peakHeldRequestBytes / MB).toFixed(2)} MB, peak send queue ${(report.agent.peakQueuedResponseBytes / MB).toFixed(2)} MB`,
    )
    expect(report.agent.peakHeldRequestBytes).toBeGreaterThan(0)
    expect(report.agent.peakHeldRequestBytes).toBeLessThan(4 * MB + MB)
    expect(report.agent.peakQueuedResponseBytes).toBeGreaterThan(0)
    expect(report.agent.peakQueuedResponseBytes).toBeLessThan(MB + 256 * 1024)
    expect(report.agent).toMatchObject({ connected: true, connections: 1, inflight: 0, heldRequestBytes: 0 })
    child.child.send({ type: 'stop' })
    await once(child.child, 'exit')
  },
)
