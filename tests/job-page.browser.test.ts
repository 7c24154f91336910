/**
 * The job page in a real browser (Debian's Chromium through playwright-core): the demo's GEPA job
 * (`apps/example/jobs/ticket-routing.gepa.toml`, deterministic model) run by `runInProcessJob`
 * against a local backend; the page opened at the URL the run reports gains points and a best
 * score, keeps following after the server drops its event stream (no duplicate point), and ends
 * with the result. The job is held at a gate (the model's third reflection waits for the test), so
 * the page is seen mid-run without any sleep. Screenshots go to test-output/screenshots/.
 */
import { randomBytes } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { createTaskApp } from '@taskapp/task-server'
import {
  deferred,
  launchBrowser,
  listenLoopback,
  screenshotPath,
  type TestBrowser,
} from '@taskapp/test-utils'
import {
  createDeterministicModel,
  createLocalBackend,
  generateContainerKeyPair,
  runInProcessJob,
  type LocalBackend,
} from '@taskapp/sdk'
import { describe, expect, it, onTestFinished } from 'vitest'
import { JOB_CONFIG } from '../apps/example/src/demo-optimize'
import { CHAT_SYSTEM_PROMPT } from '../apps/example/src/policies'
import { buildConfig } from '../apps/example/src/task-app'

const KEY = `sk_page_${randomBytes(8).toString('hex')}`
const AUTH = { authorization: `Bearer ${KEY}` }
const POINT_EVENTS = /\.(baseline|candidate\.evaluated|validation\.scored)$/

type Page = Awaited<ReturnType<Awaited<ReturnType<TestBrowser['context']>>['newPage']>>

interface WireEvent {
  seq: number
  type: string
}

/** Every event of the job so far, from the backend's API. */
async function backendEvents(backend: LocalBackend, jobId: string): Promise<WireEvent[]> {
  const res = await fetch(`${backend.url}/api/v1/offline/jobs/${jobId}/events?since_seq=0&limit=1000`, {
    headers: AUTH,
  })
  return ((await res.json()) as { events: WireEvent[] }).events
}

/** The standard deviation of the screenshot's pixels, computed by the browser from the PNG. */
async function pixelSpread(page: Page, png: Buffer): Promise<number> {
  // A string: this file is typed for Node (no DOM types); the browser runs it.
  const spread = `(async () => {
    const img = new Image()
    img.src = 'data:image/png;base64,${png.toString('base64')}'
    await img.decode()
    const canvas = document.createElement('canvas')
    canvas.width = img.width
    canvas.height = img.height
    const ctx = canvas.getContext('2d')
    ctx.drawImage(img, 0, 0)
    const px = ctx.getImageData(0, 0, img.width, img.height).data
    let sum = 0
    let sq = 0
    for (let i = 0; i < px.length; i += 4) {
      const v = (px[i] + px[i + 1] + px[i + 2]) / 3
      sum += v
      sq += v * v
    }
    const n = px.length / 4
    return Math.sqrt(sq / n - (sum / n) ** 2)
  })()`
  return page.evaluate<number>(spread)
}

/** A screenshot that is a real PNG of a drawn page: size, signature, and pixels that vary. */
async function checkedScreenshot(b: TestBrowser, path: string): Promise<void> {
  const png = await readFile(path)
  expect(png.subarray(1, 4).toString('latin1')).toBe('PNG')
  expect((await stat(path)).size).toBeGreaterThan(10_000)
  const blank = await (await b.context()).newPage()
  expect(await pixelSpread(blank, png)).toBeGreaterThan(10)
}

describe('the job page in Chromium', { timeout: 120_000 }, () => {
  it('follows the demo job live, resumes after a server-side drop without duplicates, shows the result', async () => {
    const gate = deferred()
    let reflections = 0
    await using model = await createDeterministicModel({
      onRequest: async (r) => {
        if (r.kind === 'reflection' && ++reflections >= 3) await gate.promise
      },
    })
    onTestFinished(() => gate.resolve()) // never leave the job held
    await using backend = await createLocalBackend({
      upstream: { baseUrl: model.url },
      apiKeys: [KEY],
      signingKey: generateContainerKeyPair().privateKey,
    })
    const submitted = deferred<{ jobId: string; pageUrl: string | undefined }>()
    const run = runInProcessJob({
      configPath: JOB_CONFIG,
      backend: { url: backend.url, apiKey: KEY },
      taskApp: {
        configFactory: () => buildConfig(),
        port: 0,
        tunnel: { mode: 'local' },
        containerAuth: { trustedKeys: backend.trustedKey },
      },
      handleSignals: false,
      onStatus: (u) => {
        if (u.phase === 'submitted') submitted.resolve({ jobId: u.jobId ?? '', pageUrl: u.pageUrl })
      },
    })
    run.catch(() => undefined)
    const { jobId, pageUrl } = await submitted.promise
    expect(pageUrl).toBe(`${backend.url}/jobs/${jobId}`)

    await using b = await launchBrowser()
    const page = await (await b.context()).newPage()
    const crashes: Error[] = []
    page.on('pageerror', (e) => crashes.push(e))
    await page.goto(pageUrl as string)
    expect(await page.title()).toBe(`Job ${jobId} · taskapp`)
    const job = page.locator('#job')
    const points = page.locator('svg.chart circle.pt')
    // Live: the held job shows its baseline, candidates and a best score, over an open stream.
    await expect.poll(() => reflections, { timeout: 60_000 }).toBeGreaterThanOrEqual(3)
    await expect.poll(() => job.getAttribute('data-stream')).toBe('open')
    const held = (await backendEvents(backend, jobId)).filter((e) => POINT_EVENTS.test(e.type)).length
    await expect.poll(() => points.count()).toBe(held)
    expect(held).toBeGreaterThanOrEqual(3)
    await expect.poll(() => page.locator('.best-score').textContent()).toMatch(/^\d\.\d{3}$/)
    expect(await page.locator('.pt-baseline').count()).toBe(1)
    await page.screenshot({ path: screenshotPath('job-page-running.png'), fullPage: true })

    // The server drops every event stream (the page's and the run's client's); both resume.
    expect(backend.closeEventStreams()).toBeGreaterThanOrEqual(2)
    await expect.poll(() => job.getAttribute('data-connections'), { timeout: 15_000 }).toBe('2')
    await expect.poll(() => job.getAttribute('data-stream')).toBe('open')
    gate.resolve()
    const out = await run
    expect(out.status).toBe('succeeded')
    expect(out.pageUrl).toBe(pageUrl)

    await expect.poll(() => job.getAttribute('data-status'), { timeout: 30_000 }).toBe('succeeded')
    const all = await backendEvents(backend, jobId)
    expect(await job.getAttribute('data-seq')).toBe(String(all.at(-1)?.seq))
    const expected = all.filter((e) => POINT_EVENTS.test(e.type)).length
    expect(await points.count()).toBe(expected)
    expect(expected).toBeGreaterThan(held)
    const titles = await points.evaluateAll((els) =>
      els.map((e) => `${e.getAttribute('class')}|${e.textContent}`),
    )
    expect(new Set(titles).size).toBe(titles.length) // no point twice
    expect(await page.locator('svg.chart').getAttribute('data-points')).toBe(String(expected))
    const rows = await page.locator('#job-candidates tbody tr').count()
    expect(rows).toBe(all.filter((e) => e.type.endsWith('.candidate.evaluated')).length)
    expect(await page.locator('.best-score').textContent()).toBe(out.result?.bestScore?.toFixed(3))
    expect(await page.locator('.result').textContent()).toContain('Job succeeded')
    expect(await page.locator('#job-diff ins').count()).toBeGreaterThan(0) // rules the optimizer added
    expect(crashes).toEqual([])
    const shot = screenshotPath('job-page.png')
    await page.screenshot({ path: shot, fullPage: true })
    await checkedScreenshot(b, shot)
    await checkedScreenshot(b, screenshotPath('job-page-running.png'))
  })

  it('shows an HTML-looking prompt as text, and nothing of it runs', async () => {
    const taskKey = 'sk-task-page-0123456789'
    const app = createTaskApp({ ...buildConfig({ apiKeys: [taskKey] }), containerAuth: { mode: 'disabled' } })
    await using server = await listenLoopback(app)
    onTestFinished(() => app.lifecycle.close())
    await using model = await createDeterministicModel()
    await using backend = await createLocalBackend({ upstream: { baseUrl: model.url }, apiKeys: [KEY] })
    const evil = `${CHAT_SYSTEM_PROMPT} <img src=x onerror="window.pwned=1"><script>window.pwned=2</script>`
    const created = await fetch(`${backend.url}/api/v1/offline/jobs`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({
        kind: 'gepa_offline',
        config: {
          prompt_learning: {
            algorithm: 'gepa',
            container_url: server.url,
            container_api_key: taskKey,
            initial_prompt: { messages: [{ role: 'system', pattern: evil }] },
            gepa: {
              evaluation: { seeds: { start: 0, end: 20 }, validation_seeds: { start: 150, end: 160 } },
              rollout: { budget: 40, minibatch_size: 5 },
              population: { num_generations: 1, children_per_generation: 1 },
            },
          },
        },
      }),
    })
    const { job_id: jobId } = (await created.json()) as { job_id: string }
    await using b = await launchBrowser()
    const page = await (await b.context()).newPage()
    await page.goto(`${backend.url}/jobs/${jobId}`)
    const job = page.locator('#job')
    await expect.poll(() => job.getAttribute('data-status'), { timeout: 30_000 }).toMatch(/succeeded|failed/)
    expect(await page.locator('#job-diff').textContent()).toContain('<img src=x onerror="window.pwned=1">')
    expect(await page.locator('#job-diff').textContent()).toContain('<script>window.pwned=2</script>')
    expect(await page.locator('#job img, #job-diff script').count()).toBe(0)
    expect(await page.evaluate('window.pwned')).toBeUndefined()
    const unknown = await page.goto(`${backend.url}/jobs/pl_unknown`)
    expect(unknown?.status()).toBe(404)
    expect(await page.locator('[data-code]').getAttribute('data-code')).toBe('TASKAPP_ERR_JOBS_JOB_NOT_FOUND')
  })
})
