/**
 * The job pages over real HTTP on 127.0.0.1: the list, one job's page (its id, its state, every
 * prompt escaped), the script, 404 and 403 with their codes, the key rule, and the event stream the
 * page follows, dropped from the server side and resumed.
 */
import { readFile } from 'node:fs/promises'
import { request } from 'node:http'
import { describe, expect, it } from 'vitest'
import { createLocalBackend, type LocalBackend } from '../local-backend'
import {
  AUTH,
  BACKEND_KEY,
  backendWithModel,
  call,
  CHAT_SYSTEM_PROMPT,
  exampleConfig,
  g3Body,
  readSse,
  serveExampleTaskApp,
  untilEnd,
} from '../test-helpers'

const XSS = `<img src=x onerror="window.pwned=1"></script><script>window.pwned=2</script> & 'quotes'`

/** GET with any headers (fetch cannot set Host). */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: res.headers['content-type'] ?? '',
          body,
          headers: res.headers,
        }),
      )
    })
    req.on('error', reject)
    req.end()
  })
}

/** A finished small job whose initial prompt is `prompt`. */
async function finishedJob(
  backend: LocalBackend,
  taskUrl: string,
  prompt = CHAT_SYSTEM_PROMPT,
): Promise<string> {
  const config = exampleConfig(taskUrl, {
    rollout: { budget: 60, max_concurrent: 4, minibatch_size: 5 },
    population: { num_generations: 1, children_per_generation: 2 },
  })
  const initial = config.initial_prompt as { messages: { pattern: string }[] }
  ;(initial.messages[0] as { pattern: string }).pattern = prompt
  const created = await call(backend, 'POST', '/api/v1/offline/jobs', g3Body(config))
  const id = created.json.job_id as string
  await untilEnd(backend, id)
  return id
}

describe('job pages', { timeout: 60_000 }, () => {
  it('serve the list and a job page from loopback without a key, with the state and script', async () => {
    const task = await serveExampleTaskApp()
    await using local = await backendWithModel()
    const { backend } = local
    const id = await finishedJob(backend, task.url)
    const page = await get(`${backend.url}/jobs/${id}`)
    expect(page.status).toBe(200)
    expect(page.type).toBe('text/html; charset=utf-8')
    expect(page.headers['content-security-policy']).toContain("script-src 'self'")
    expect(page.body).toContain(`<code>${id}</code>`)
    expect(page.body).toContain(`data-events-url="/jobs/${id}/events"`)
    expect(page.body).toContain('<script type="module" src="/jobs/job-page.js"></script>')
    expect(page.body).toMatch(/<svg class="chart"[^>]*data-points="\d+"/)
    expect(page.body).toContain('class="pt pt-baseline"')
    const json = /<script type="application\/json" id="job-state">(.*?)<\/script>/.exec(page.body)?.[1]
    const state = JSON.parse(json ?? 'null')
    const status = (await call(backend, 'GET', `/api/v1/offline/jobs/${id}`)).json
    expect(state).toMatchObject({ jobId: id, status: 'succeeded', rolloutsUsed: status.rollouts_used })
    expect(state.seq).toBe((await readSse(`${backend.url}/jobs/${id}/events`, {})).events.length)
    expect(state.best.score).toBe(status.best_score)

    const list = await get(`${backend.url}/jobs`)
    expect(list.status).toBe(200)
    expect(list.body).toContain(`<a href="/jobs/${id}"><code>${id}</code></a>`)

    const script = await get(`${backend.url}/jobs/job-page.js`)
    expect(script.status).toBe(200)
    expect(script.type).toBe('text/javascript; charset=utf-8')
    expect(script.body).toBe(await readFile(new URL('./job-page.js', import.meta.url), 'utf8'))
  })

  it('escapes a prompt that looks like HTML, in the page and in its embedded state', async () => {
    const task = await serveExampleTaskApp()
    await using local = await backendWithModel()
    const id = await finishedJob(local.backend, task.url, XSS)
    const page = await get(`${local.backend.url}/jobs/${id}`)
    expect(page.status).toBe(200)
    expect(page.body).not.toContain('<img src=x')
    expect(page.body).not.toContain('<script>window.pwned')
    expect(page.body.match(/<\/script>/g)).toHaveLength(2) // the state's and the module's, nothing more
    expect(page.body).toContain('&lt;img src=x onerror=&quot;window.pwned=1&quot;&gt;')
    const json = /id="job-state">(.*?)<\/script>/.exec(page.body)?.[1] ?? ''
    expect(JSON.parse(json).baseline.prompt).toBe(XSS)
  })

  it('answer 404 TASKAPP_ERR_JOBS_JOB_NOT_FOUND for an unknown job, as HTML for a browser', async () => {
    await using local = await backendWithModel()
    const html = await get(`${local.backend.url}/jobs/pl_nope`, { accept: 'text/html' })
    expect(html.status).toBe(404)
    expect(html.type).toContain('text/html')
    expect(html.body).toContain('data-code="TASKAPP_ERR_JOBS_JOB_NOT_FOUND"')
    expect(html.body).toContain('No job &quot;pl_nope&quot; on this backend')
    const json = await get(`${local.backend.url}/jobs/pl_nope/events`, { accept: 'text/event-stream' })
    expect(json.status).toBe(404)
    expect(JSON.parse(json.body).error.code).toBe('TASKAPP_ERR_JOBS_JOB_NOT_FOUND')
    expect((await get(`${local.backend.url}/jobs/a/b`)).status).toBe(404)
    const post = await call(local.backend, 'POST', '/jobs', {})
    expect(post.status).toBe(405)
  })

  it('with apiKeys, refuse a non-loopback Host (DNS rebinding) with 403 unless a key is sent', async () => {
    await using local = await backendWithModel()
    const url = `${local.backend.url}/jobs`
    const refused = await get(url, { host: 'attacker.example:80', accept: 'text/html' })
    expect(refused.status).toBe(403)
    expect(refused.body).toContain('data-code="TASKAPP_ERR_JOBS_PAGE_FORBIDDEN"')
    expect((await get(url, { host: 'attacker.example' })).status).toBe(403)
    expect((await get(url, { host: 'attacker.example', ...AUTH })).status).toBe(200)
    expect((await get(url, { host: 'attacker.example', 'x-api-key': BACKEND_KEY })).status).toBe(200)
    expect((await get(url, { host: 'localhost:1234' })).status).toBe(200)
    // The API itself still wants the key from loopback.
    expect((await call(local.backend, 'GET', '/api/v1/offline/jobs/pl_x', undefined, {})).status).toBe(401)
  })

  it('without apiKeys serve any Host; jobPages: false serves no page', async () => {
    await using open = await createLocalBackend({ upstream: { baseUrl: 'http://127.0.0.1:9/v1' } })
    expect((await get(`${open.url}/jobs`, { host: 'attacker.example' })).status).toBe(200)
    await using off = await createLocalBackend({
      upstream: { baseUrl: 'http://127.0.0.1:9/v1' },
      jobPages: false,
    })
    const none = await get(`${off.url}/jobs`)
    expect(none.status).toBe(404)
    expect(JSON.parse(none.body).error.code).toBe('not_found')
    await expect(
      createLocalBackend({ upstream: { baseUrl: 'http://127.0.0.1:9/v1' }, jobPages: 'yes' as never }),
    ).rejects.toMatchObject({ code: 'TASKAPP_ERR_JOBS_INVALID_CONFIG' })
  })

  it('closeEventStreams drops open page streams; the page resumes after Last-Event-ID', async () => {
    const task = await serveExampleTaskApp()
    await using local = await backendWithModel()
    const { backend } = local
    const body = g3Body(exampleConfig(task.url), { auto_start: false })
    const id = (await call(backend, 'POST', '/api/v1/offline/jobs', body)).json.job_id as string
    const res = await fetch(`${backend.url}/jobs/${id}/events`, { headers: { accept: 'text/event-stream' } })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const first = new TextDecoder().decode((await reader.read()).value)
    expect(first).toBe('retry: 1000\n\n') // the stream is open and registered
    expect(backend.closeEventStreams()).toBe(1)
    await expect(
      (async () => {
        for (;;) if ((await reader.read()).done) return 'ended'
      })(),
    ).rejects.toThrow() // dropped, not ended cleanly
    expect(backend.closeEventStreams()).toBe(0)
    await call(backend, 'PATCH', `/api/v1/offline/jobs/${id}`, { state: 'running' })
    const all = (await untilEnd(backend, id)).sse.events
    const resumed = await readSse(`${backend.url}/jobs/${id}/events`, { 'last-event-id': '2' })
    expect(resumed.done).toBe(true)
    expect(resumed.events.map((e) => e.seq)).toEqual(all.slice(2).map((e) => e.seq))
  })
})
