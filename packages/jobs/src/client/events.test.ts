/**
 * events(): the SSE stream, resumed from the last seq after a drop with no event lost or repeated,
 * paged polling when the stream is missing or keeps failing, dedupe by id when there is no seq.
 * Against the fake backend (src/fixtures/fake-backend.ts: node:http on 127.0.0.1, written from the
 * reference's request and response shapes; the real local backend is built separately).
 */
import { describe, expect, it, vi } from 'vitest'
import type { JobEvent } from '../index'
import type { FakeBackend } from '../fixtures/fake-backend'
import { submittedJob } from '../fixtures/submitted-job'

const setup = submittedJob

async function collect(iterable: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const out: JobEvent[] = []
  for await (const event of iterable) out.push(event)
  return out
}

const streamRequests = (backend: FakeBackend) =>
  backend.requests.filter((r) => r.path.endsWith('/events/stream'))
const pageRequests = (backend: FakeBackend) => backend.requests.filter((r) => r.path.endsWith('/events'))
const GEPA_TYPES = [
  'job.started',
  'baseline',
  'candidate.evaluated',
  'candidate.evaluated',
  'generation.completed',
  'candidate.new_best',
  'validation.completed',
  'job.completed',
].map((t) => `learning.policy.gepa.${t}`)

describe('events(): SSE', () => {
  it('reads the stream (Accept: text/event-stream, both auth headers) and ends at the terminal event', async () => {
    await using t = await setup()
    t.backend.playGepa(t.jobId)
    const events = await collect(t.job.events())
    expect(events.map((e) => e.type)).toEqual(GEPA_TYPES)
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(events.at(-1)).toMatchObject({ category: 'complete', terminalStatus: 'succeeded', jobId: t.jobId })
    expect(events[2]).toMatchObject({ category: 'candidate', data: { candidate_id: 'c1', accuracy: 0.5 } })
    const [stream] = streamRequests(t.backend)
    expect(stream?.path).toBe(`/api/v1/offline/jobs/${t.jobId}/events/stream`)
    expect(stream?.headers).toMatchObject({
      accept: 'text/event-stream',
      authorization: 'Bearer sk-test',
      'x-api-key': 'sk-test',
    })
    expect(pageRequests(t.backend)).toHaveLength(0)
  })

  it('delivers live events as the backend emits them', async () => {
    await using t = await setup()
    const pending = collect(t.job.events())
    await vi.waitFor(() => expect(t.backend.streams.open).toBe(1))
    t.backend.playGepa(t.jobId)
    expect((await pending).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
  })

  it('a stream dropped mid-way: pages from the last seq, reconnects with since_seq, no event lost or repeated', async () => {
    await using t = await setup({ dropStreamAfter: 2, dropFirstOnly: true })
    const p = 'learning.policy.gepa'
    t.backend.emit(t.jobId, `${p}.job.started`)
    t.backend.emit(t.jobId, `${p}.baseline`, { accuracy: 0.4 })
    t.backend.emit(t.jobId, `${p}.candidate.evaluated`, { candidate_id: 'c1', accuracy: 0.5 })
    const pending = collect(t.job.events())
    await vi.waitFor(() => expect(t.backend.streams).toEqual({ opened: 2, open: 1 }))
    t.backend.emit(t.jobId, `${p}.candidate.evaluated`, { candidate_id: 'c2', accuracy: 0.7 })
    t.backend.emit(t.jobId, `${p}.job.completed`, { best_score: 0.7 })
    const events = await pending
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5])
    expect(pageRequests(t.backend)[0]?.query.get('since_seq')).toBe('2')
    expect(streamRequests(t.backend).map((r) => r.query.get('since_seq'))).toEqual([null, '3'])
  })

  it('a stream that replays everything on reconnection (since_seq ignored): duplicates dropped by seq', async () => {
    await using t = await setup({
      dropStreamAfter: 3,
      dropFirstOnly: true,
      streamIgnoresSinceSeq: true,
      paging: false,
    })
    t.backend.playGepa(t.jobId)
    const events = await collect(t.job.events())
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(t.backend.streams.opened).toBe(2)
  })

  it('events({ sinceSeq }) starts after that seq', async () => {
    await using t = await setup()
    t.backend.playGepa(t.jobId)
    expect((await collect(t.job.events({ sinceSeq: 5 }))).map((e) => e.seq)).toEqual([6, 7, 8])
    expect(streamRequests(t.backend)[0]?.query.get('since_seq')).toBe('5')
  })

  it('an aborted iteration rejects with signal.reason and closes the stream', async () => {
    await using t = await setup()
    const controller = new AbortController()
    const pending = collect(t.job.events({ signal: controller.signal }))
    await vi.waitFor(() => expect(t.backend.streams.open).toBe(1))
    const reason = new Error('user stop')
    controller.abort(reason)
    await expect(pending).rejects.toBe(reason)
    await vi.waitFor(() => expect(t.backend.streams.open).toBe(0))
  })

  it('breaking out of the loop closes the stream', async () => {
    await using t = await setup()
    t.backend.emit(t.jobId, 'learning.policy.gepa.job.started')
    for await (const event of t.job.events()) {
      expect(event.seq).toBe(1)
      break
    }
    await vi.waitFor(() => expect(t.backend.streams.open).toBe(0))
  })

  it('a 401 on the stream is an auth error', async () => {
    await using t = await setup({
      respond: (r) => (r.path.endsWith('/stream') ? { status: 401 } : undefined),
    })
    await expect(collect(t.job.events())).rejects.toMatchObject({
      code: 'TASKAPP_ERR_JOBS_AUTH',
      status: 401,
    })
  })
})

describe('events(): paged polling', () => {
  it('falls back to pages when the stream answers 404, polling status between pages', async () => {
    await using t = await setup({ stream: 'missing' })
    const pending = collect(t.job.events())
    await vi.waitFor(() => expect(pageRequests(t.backend).length).toBeGreaterThanOrEqual(2))
    t.backend.playGepa(t.jobId)
    const events = await pending
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(streamRequests(t.backend)).toHaveLength(1)
    expect(pageRequests(t.backend)[0]?.query.get('limit')).toBe('500')
    expect(t.backend.requests.some((r) => r.path === `/api/v1/offline/jobs/${t.jobId}`)).toBe(true)
  })

  it('falls back to pages for good after maxStreamFailures (3) failing streams', async () => {
    await using t = await setup({ stream: 'error' })
    const pending = collect(t.job.events())
    await vi.waitFor(() => expect(pageRequests(t.backend).length).toBeGreaterThanOrEqual(4))
    t.backend.playGepa(t.jobId)
    expect((await pending).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(streamRequests(t.backend)).toHaveLength(3)
  })

  it('ends when the status is final even without a terminal event, after a last page', async () => {
    await using t = await setup({ stream: 'missing' })
    t.backend.emit(t.jobId, 'learning.policy.gepa.job.started')
    t.backend.setStatus(t.jobId, 'succeeded')
    expect((await collect(t.job.events())).map((e) => e.seq)).toEqual([1])
  })
})

describe('events(): no seq', () => {
  it('dedupes by event id when the backend sends no seq (stream replays after a drop)', async () => {
    await using t = await setup({ withSeq: false, dropStreamAfter: 4, dropFirstOnly: true, paging: false })
    t.backend.playGepa(t.jobId)
    const events = await collect(t.job.events())
    expect(events.map((e) => e.id)).toEqual([
      'evt_1',
      'evt_2',
      'evt_3',
      'evt_4',
      'evt_5',
      'evt_6',
      'evt_7',
      'evt_8',
    ])
    expect(events.every((e) => e.seq === undefined)).toBe(true)
    expect(t.backend.streams.opened).toBe(2)
  })

  it('dedupes by event id across pages without since_seq', async () => {
    await using t = await setup({ withSeq: false, stream: 'missing' })
    t.backend.emit(t.jobId, 'learning.policy.gepa.job.started')
    const pending = collect(t.job.events())
    await vi.waitFor(() => expect(pageRequests(t.backend).length).toBeGreaterThanOrEqual(2))
    t.backend.playGepa(t.jobId)
    const events = await pending
    expect(events.map((e) => e.id)).toEqual(Array.from({ length: 9 }, (_, i) => `evt_${i + 1}`))
    expect(pageRequests(t.backend).every((r) => !r.query.has('since_seq'))).toBe(true)
  })
})
