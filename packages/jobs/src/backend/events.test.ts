/**
 * Job events over real HTTP: the SSE stream (live, replay, resume from `Last-Event-ID` and
 * `since_seq`, `[DONE]`) and the paged `/events` route.
 */
import { describe, expect, it } from 'vitest'
import type { LocalBackend } from './local-backend'
import {
  AUTH,
  backendWithModel,
  call,
  exampleConfig,
  g3Body,
  readSse,
  serveExampleTaskApp,
  untilEnd,
} from './test-helpers'

async function finishedJob(backend: LocalBackend, taskUrl: string): Promise<string> {
  const created = await call(
    backend,
    'POST',
    '/api/v1/offline/jobs',
    g3Body(exampleConfig(taskUrl, { population: { num_generations: 1, children_per_generation: 2 } })),
  )
  await untilEnd(backend, created.json.job_id as string)
  return created.json.job_id as string
}

describe('job events', { timeout: 60_000 }, () => {
  it('SSE replays a finished job, then resumes after Last-Event-ID or since_seq', async () => {
    const task = await serveExampleTaskApp()
    await using local = await backendWithModel()
    const { backend } = local
    const id = await finishedJob(backend, task.url)
    const stream = `${backend.url}/api/v1/offline/jobs/${id}/events/stream`
    const all = await readSse(stream, AUTH)
    expect(all.done).toBe(true)
    expect(all.events.length).toBeGreaterThan(5)
    const total = all.events.length
    const byHeader = await readSse(stream, { ...AUTH, 'last-event-id': '3' })
    expect(byHeader.done).toBe(true)
    expect(byHeader.events.map((e) => e.seq)).toEqual(all.events.slice(3).map((e) => e.seq))
    const byQuery = await readSse(`${stream}?since_seq=${total - 2}`, AUTH)
    expect(byQuery.events.map((e) => e.seq)).toEqual([total - 1, total])
    expect(byQuery.events).toEqual(all.events.slice(-2))
    const past = await readSse(`${stream}?since_seq=${total}`, AUTH)
    expect(past).toEqual({ events: [], ids: [], done: true })
    // The G1 stream path serves the same log.
    const g1 = await readSse(`${backend.url}/api/prompt-learning/online/jobs/${id}/events/stream`, AUTH)
    expect(g1.events).toEqual(all.events)
  })

  it('a client that drops the stream mid-job resumes from the last seq it saw and misses nothing', async () => {
    const task = await serveExampleTaskApp()
    await using local = await backendWithModel()
    const { backend } = local
    const created = await call(backend, 'POST', '/api/v1/offline/jobs', g3Body(exampleConfig(task.url)))
    const stream = `${backend.url}/api/v1/offline/jobs/${created.json.job_id}/events/stream`
    const first = await readSse(stream, AUTH, 2)
    expect(first.done).toBe(false)
    const last = first.events.at(-1)?.seq as number
    const rest = await readSse(stream, { ...AUTH, 'last-event-id': String(last) })
    expect(rest.done).toBe(true)
    const seqs = [...first.events, ...rest.events].map((e) => e.seq)
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1))
    expect(rest.events.at(-1)?.type).toBe('learning.policy.gepa.job.completed')
  })

  it('pages events with since_seq and limit', async () => {
    const task = await serveExampleTaskApp()
    await using local = await backendWithModel()
    const { backend } = local
    const id = await finishedJob(backend, task.url)
    const everything = await call(backend, 'GET', `/api/v1/offline/jobs/${id}/events`)
    const total = everything.json.events.length as number
    expect(everything.json).toMatchObject({ next_seq: total, has_more: false })
    const pages: number[][] = []
    let since = 0
    for (;;) {
      const page = await call(backend, 'GET', `/api/v2/offline/jobs/${id}/events?since_seq=${since}&limit=4`)
      expect(page.status).toBe(200)
      pages.push(page.json.events.map((e: { seq: number }) => e.seq))
      since = page.json.next_seq as number
      if (!page.json.has_more) break
    }
    expect(pages.flat()).toEqual(Array.from({ length: total }, (_, i) => i + 1))
    expect(pages.every((p) => p.length <= 4)).toBe(true)
    const bad = await call(backend, 'GET', `/api/v1/offline/jobs/${id}/events?limit=0`)
    expect(bad.status).toBe(400)
    const unknown = await call(backend, 'GET', '/api/v1/offline/jobs/pl_missing/events')
    expect(unknown.status).toBe(404)
  })
})
