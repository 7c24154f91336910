/**
 * Async jobs belong to the caller that created them: readable and cancellable only by the same
 * API key, or by a container token of the same issuer (tokens change on every call). Others get
 * 404 `job_not_found`, as for an unknown id. A per-owner quota keeps one caller from filling the
 * store for everyone (429 `job_quota_exceeded`).
 */
import { describe, expect, onTestFinished, test, vi } from 'vitest'
import { deferred, recordingLogger } from '@taskapp/test-utils'
import { generateContainerKeyPair, signContainerToken } from './container-auth/sign'
import { createMemoryJobStore, createTaskApp } from './index'
import type { RolloutContext, RolloutRequest, TaskAppConfig } from './index'
import { AUTH, inject, KEY, rolloutBody, testConfig, type InjectResponse } from './test-helpers'

const KEY_B = 'sk-env-test-other-9876543210'
const AUTH_B = Object.freeze({ 'x-api-key': KEY_B })
const pair = generateContainerKeyPair({ kid: 'k1' })

type Headers = Record<string, string>

/** A handler whose rollouts wait until released (all at once) or aborted. */
function gated() {
  const release = deferred<void>()
  let started = 0
  const rollout = async (request: RolloutRequest, ctx: RolloutContext) => {
    started += 1
    await new Promise<void>((resolve, reject) => {
      ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })
      void release.promise.then(resolve)
    })
    return { trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: 1 } }
  }
  return { rollout, release, started: () => started }
}

function makeApp(overrides: Partial<TaskAppConfig>) {
  const app = createTaskApp(testConfig(overrides))
  onTestFinished(() => app.lifecycle.close({ graceMs: 1000 }))
  return app
}

type App = ReturnType<typeof makeApp>

const startJob = (app: App, headers: Headers) =>
  inject(app, { method: 'POST', url: '/rollout?mode=async', headers, body: rolloutBody() })
const getJob = (app: App, id: string, headers: Headers) => inject(app, { url: `/rollouts/${id}`, headers })
const deleteJob = (app: App, id: string, headers: Headers) =>
  inject(app, { method: 'DELETE', url: `/rollouts/${id}`, headers })

function expectNotFound(res: InjectResponse, id: string): void {
  expect(res.status).toBe(404)
  expect(res.json().detail.error).toEqual({
    code: 'job_not_found',
    message: `No rollout job ${id}; it never existed or was evicted.`,
  })
}

async function bearer(options: { issuer?: string } = {}): Promise<Headers> {
  const token = await signContainerToken({
    privateKey: pair.privateKey,
    kid: 'k1',
    scopes: ['rollout'],
    ttlMs: 300_000,
    ...options,
  })
  return { 'x-synth-container-authorization': `Bearer ${token}` }
}

/**
 * Owner A starts a job; owner B can neither read nor cancel it (404, the job keeps running); A
 * reads it, and cancels it.
 */
async function expectIsolated(
  app: App,
  h: ReturnType<typeof gated>,
  a: () => Promise<Headers>,
  b: () => Promise<Headers>,
) {
  const started = await startJob(app, await a())
  expect(started.status, started.text).toBe(202)
  const id = started.json().id as string
  await vi.waitFor(() => expect(h.started()).toBe(1))

  expectNotFound(await getJob(app, id, await b()), id)
  expectNotFound(await deleteJob(app, id, await b()), id)
  const still = await getJob(app, id, await a())
  expect([still.status, still.json().status]).toEqual([200, 'running'])

  const cancelled = await deleteJob(app, id, await a())
  expect([cancelled.status, cancelled.json().status]).toEqual([200, 'cancelled'])
  expectNotFound(await getJob(app, id, await b()), id)
  expect((await getJob(app, id, await a())).json().status).toBe('cancelled')
}

describe('job ownership', () => {
  test('two API keys: the other key gets 404 on GET and DELETE, the owner reads and cancels', async () => {
    const h = gated()
    const app = makeApp({ apiKeys: [KEY, KEY_B], rollout: h.rollout })
    await expectIsolated(
      app,
      h,
      async () => AUTH,
      async () => AUTH_B,
    )
  })

  test('a key sent beside a wrong one in X-API-Keys owns the job as that key', async () => {
    const h = gated()
    const app = makeApp({ apiKeys: [KEY, KEY_B], rollout: h.rollout })
    await expectIsolated(
      app,
      h,
      async () => ({ 'x-api-keys': `sk-wrong, ${KEY}` }),
      async () => ({ 'x-api-keys': `sk-wrong, ${KEY_B}` }),
    )
  })

  test('container tokens: a fresh token of the same issuer reads and cancels; an API key caller gets 404', async () => {
    const h = gated()
    const app = makeApp({ apiKeys: [KEY], containerAuth: { trustedKeys: pair.trusted }, rollout: h.rollout })
    // A new token on every call, as Synth's backend sends them.
    await expectIsolated(
      app,
      h,
      () => bearer(),
      async () => AUTH,
    )
  })

  test('an API key job is not readable with a container token', async () => {
    const h = gated()
    const app = makeApp({ apiKeys: [KEY], containerAuth: { trustedKeys: pair.trusted }, rollout: h.rollout })
    await expectIsolated(
      app,
      h,
      async () => AUTH,
      () => bearer(),
    )
  })

  test('tokens from two issuers (two task apps sharing one job store): 404 across issuers', async () => {
    const store = createMemoryJobStore()
    onTestFinished(() => store.close())
    const h = gated()
    const common = { apiKeys: [] as string[], jobStore: store, rollout: h.rollout }
    const appA = makeApp({ ...common, containerAuth: { trustedKeys: pair.trusted, issuer: 'issuer-a' } })
    const appB = makeApp({ ...common, containerAuth: { trustedKeys: pair.trusted, issuer: 'issuer-b' } })
    const started = await startJob(appA, await bearer({ issuer: 'issuer-a' }))
    expect(started.status, started.text).toBe(202)
    const id = started.json().id as string
    await vi.waitFor(() => expect(h.started()).toBe(1))
    expectNotFound(await getJob(appB, id, await bearer({ issuer: 'issuer-b' })), id)
    expectNotFound(await deleteJob(appB, id, await bearer({ issuer: 'issuer-b' })), id)
    const own = await getJob(appA, id, await bearer({ issuer: 'issuer-a' }))
    expect([own.status, own.json().status]).toEqual([200, 'running'])
    h.release.resolve()
    await vi.waitFor(async () =>
      expect((await getJob(appA, id, await bearer({ issuer: 'issuer-a' }))).json().status).toBe('succeeded'),
    )
  })

  test('without auth (requireApiKey off) every caller is the one anonymous owner', async () => {
    const h = gated()
    const app = makeApp({ requireApiKey: false, rollout: h.rollout })
    const started = await startJob(app, {})
    expect(started.status).toBe(202)
    const id = started.json().id as string
    expect((await getJob(app, id, {})).json().status).toMatch(/pending|running/)
    h.release.resolve()
    await vi.waitFor(async () => expect((await getJob(app, id, {})).json().status).toBe('succeeded'))
  })

  test('the job record keeps an owner id derived from the key, never the key itself', async () => {
    const store = createMemoryJobStore()
    onTestFinished(() => store.close())
    const app = makeApp({ jobStore: store })
    const id = (await startJob(app, AUTH)).json().id as string
    await vi.waitFor(() => expect(store.get(id)?.status).toBe('succeeded'))
    const owner = store.get(id)?.owner
    expect(owner).toMatch(/^key:[0-9a-f]{32}$/)
    expect(JSON.stringify(store.get(id))).not.toContain(KEY)
  })
})

describe('per-owner job quota (limits.maxJobsPerOwner)', () => {
  test('owner A over its quota gets 429 job_quota_exceeded; owner B is still accepted', async () => {
    const h = gated()
    const app = makeApp({ apiKeys: [KEY, KEY_B], rollout: h.rollout, limits: { maxJobsPerOwner: 2 } })
    const ids: string[] = []
    for (let i = 0; i < 2; i += 1) {
      const res = await startJob(app, AUTH)
      expect(res.status).toBe(202)
      ids.push(res.json().id as string)
    }
    const refused = await startJob(app, AUTH)
    expect(refused.status).toBe(429)
    expect(refused.headers['retry-after']).toBe('5')
    expect(refused.json()).toEqual({
      detail: {
        error: {
          code: 'job_quota_exceeded',
          message:
            'This caller already has 2 unfinished rollout jobs (limits.maxJobsPerOwner); wait for one to finish or cancel one with DELETE /rollouts/:id.',
          limit: 2,
        },
      },
    })
    expect((await startJob(app, AUTH_B)).status).toBe(202)
    await vi.waitFor(() => expect(h.started()).toBe(3)) // the refused job never started

    // A finished (or cancelled) job frees its slot.
    expect((await deleteJob(app, ids[0]!, AUTH)).status).toBe(200)
    expect((await startJob(app, AUTH)).status).toBe(202)
    h.release.resolve()
  })

  test('the default quota (250) is a quarter of the default store (1000)', async () => {
    const h = gated()
    const app = makeApp({ rollout: h.rollout })
    const accepted = await Promise.all(Array.from({ length: 250 }, () => startJob(app, AUTH)))
    expect(accepted.map((r) => r.status)).toEqual(Array(250).fill(202))
    expect((await startJob(app, AUTH)).status).toBe(429)
    h.release.resolve()
  })

  test('a sync rollout past syncTimeoutMs over the quota keeps waiting instead of becoming a job', async () => {
    const h = gated()
    const logger = recordingLogger()
    const app = makeApp({ rollout: h.rollout, logger, syncTimeoutMs: 20, limits: { maxJobsPerOwner: 1 } })
    expect((await startJob(app, AUTH)).status).toBe(202)
    const sync = inject(app, { method: 'POST', url: '/rollout', headers: AUTH, body: rolloutBody() })
    // Past syncTimeoutMs the run tries to go on as a job; over the quota it stays a sync call.
    await vi.waitFor(() =>
      expect(logger.records.map((r) => r.msg)).toContain(
        'task-server: job quota reached; the sync-timeout rollout goes on as a sync call',
      ),
    )
    h.release.resolve()
    const res = await sync
    expect(res.status).toBe(200)
    expect(res.json().trace_correlation_id).toBe('trace-1')
  })
})
