/**
 * `runInProcessJob` against the real thing: the local jobs backend with the deterministic model
 * on 127.0.0.1, the example task app started by the function itself (local mode, and through a
 * real SynthTunnel relay with the worker token), stopped on completion, abort and timeout.
 */
import { isPortAvailable } from '@taskapp/port-manager'
import { createRelayServer } from '@taskapp/tunnel-synth/relay'
import { describe, expect, it } from 'vitest'
import {
  BACKEND_KEY,
  EXAMPLE_TOML,
  SMALL_JOB,
  backendStatus,
  exampleTaskApp,
  hangingTaskApp,
  startBackend,
} from './fixtures/job-helpers'
import type { InProcessJobUpdate, RunInProcessJobOptions } from './run-job-options'
import { runInProcessJob } from './run-in-process-job'

const ENV = {} // nothing from the developer's shell: every key and URL is given

function portOf(url: string): number {
  return Number(new URL(url).port)
}

describe('runInProcessJob', { timeout: 60_000 }, () => {
  it('local mode: starts the app, runs the job to success, reports progress, stops the app', async () => {
    const { backend, trustedKey } = await startBackend({ signing: true })
    const updates: InProcessJobUpdate[] = []
    const out = await runInProcessJob({
      configPath: EXAMPLE_TOML,
      backend: { url: backend.url, apiKey: BACKEND_KEY },
      overrides: SMALL_JOB,
      env: ENV,
      handleSignals: false,
      taskApp: { configFactory: exampleTaskApp, port: 0, containerAuth: { trustedKeys: trustedKey } },
      onStatus: (u) => void updates.push(u),
    })
    expect(out.status).toBe('succeeded')
    expect(out.jobId).toMatch(/^pl_/)
    expect(out.backendUrl).toBe(backend.url)
    expect(out.taskAppUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(out.health).toMatchObject({ ok: true, checked: 'local' })
    const result = out.result!
    expect(result.bestScore).toBeGreaterThan(result.baselineScore!)
    expect(result.bestPrompt).toContain('If the input mentions')
    // The newer generation end to end: the app verified the backend's signed tokens.
    expect(updates.find((u) => u.event?.type.endsWith('.job.started'))?.event?.data).toMatchObject({
      container_auth: 'container_token',
    })
    const phases = updates.map((u) => u.phase).filter((p, i, all) => p !== all[i - 1])
    expect(phases).toEqual(['task-app-started', 'submitted', 'event', 'finished'])
    const last = updates.at(-1)!
    expect(last).toMatchObject({ phase: 'finished', status: 'succeeded', jobId: out.jobId })
    expect(last.progress).toMatchObject({
      generation: 2,
      generations: 2,
      rolloutBudget: 200,
      bestScore: result.bestScore,
      baselineScore: result.baselineScore,
    })
    expect(last.progress.rolloutsUsed).toBe(result.raw.rollouts_used)
    expect(await isPortAvailable(portOf(out.taskAppUrl), { host: '127.0.0.1' })).toBe(true)
  })

  it('through a real relay: the job gets the tunnel URL and the worker token, the agent adds the key', async () => {
    const { backend } = await startBackend()
    await using relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
    let started: InProcessJobUpdate | undefined
    const out = await runInProcessJob({
      configPath: EXAMPLE_TOML,
      backend: { url: backend.url, apiKey: BACKEND_KEY },
      overrides: SMALL_JOB,
      env: ENV,
      handleSignals: false,
      taskApp: {
        configFactory: exampleTaskApp,
        port: 0,
        tunnel: { mode: 'synthtunnel', relayUrl: relay.url, relayApiKey: relay.apiKey },
      },
      onStatus: (u) => void (u.phase === 'task-app-started' && (started = u)),
    })
    expect(started).toMatchObject({ tunnelMode: 'synthtunnel' })
    expect(out.taskAppUrl.startsWith(`${relay.url}/s/rt_`)).toBe(true)
    expect(out.status).toBe('succeeded')
    expect(out.result!.bestScore).toBeGreaterThan(out.result!.baselineScore!)
    // Every rollout went through the relay; the tunnel is gone once the call returns.
    expect(relay.stats().agents).toBe(0)
  })

  it('local mode, an app that wants X-API-Key and trusts no container key: refused before submitting', async () => {
    const { backend } = await startBackend()
    const updates: InProcessJobUpdate[] = []
    const run = runInProcessJob({
      configPath: EXAMPLE_TOML,
      backend: { url: backend.url, apiKey: BACKEND_KEY },
      env: ENV,
      handleSignals: false,
      taskApp: { configFactory: exampleTaskApp, port: 0 },
      onStatus: (u) => void updates.push(u),
    })
    await expect(run).rejects.toMatchObject({
      name: 'SdkError',
      code: 'TASKAPP_ERR_JOB_TASK_APP_AUTH',
      message: expect.stringContaining('taskApp.containerAuth { trustedKeys }'),
    })
    expect(updates.map((u) => u.phase)).toEqual([])
  })

  it('a job that fails resolves with status failed and the reason', async () => {
    const { backend, trustedKey } = await startBackend({ signing: true })
    const out = await runInProcessJob({
      configPath: EXAMPLE_TOML,
      backend: { url: backend.url, apiKey: BACKEND_KEY },
      env: ENV,
      handleSignals: false,
      taskApp: {
        config: { ...exampleTaskApp(), rollout: () => Promise.reject(new Error('no model today')) },
        port: 0,
        containerAuth: { trustedKeys: trustedKey },
      },
    })
    expect(out.status).toBe('failed')
    expect(out.result?.error).toContain('rollout')
  })
})

describe('runInProcessJob stops everything', { timeout: 60_000 }, () => {
  async function hangingRun(extra: Partial<RunInProcessJobOptions>) {
    const { backend, trustedKey } = await startBackend({ signing: true })
    const hanging = hangingTaskApp()
    let jobId: string | undefined
    let taskAppUrl: string | undefined
    const run = runInProcessJob({
      configPath: EXAMPLE_TOML,
      backend: { url: backend.url, apiKey: BACKEND_KEY },
      env: ENV,
      handleSignals: false,
      taskApp: { config: hanging.config, port: 0, containerAuth: { trustedKeys: trustedKey } },
      onStatus: (u) => {
        jobId ??= u.jobId
        taskAppUrl ??= u.taskAppUrl
      },
      ...extra,
    })
    run.catch(() => undefined)
    return { backend, hanging, run, jobId: () => jobId, taskAppUrl: () => taskAppUrl }
  }

  it('on abort: cancels the job on the backend, aborts its rollouts, stops the app, rejects with the reason', async () => {
    const controller = new AbortController()
    const t = await hangingRun({ signal: controller.signal })
    await t.hanging.firstRollout.promise
    const reason = new Error('stop now')
    controller.abort(reason)
    await expect(t.run).rejects.toBe(reason)
    expect(await backendStatus(t.backend, t.jobId()!)).toMatchObject({ status: 'cancelled' })
    expect(t.hanging.aborted()).toBeGreaterThan(0)
    expect(await isPortAvailable(portOf(t.taskAppUrl()!), { host: '127.0.0.1' })).toBe(true)
  })

  it('on timeoutMs: cancels the job, stops the app, rejects with TASKAPP_ERR_JOBS_TIMEOUT', async () => {
    const t = await hangingRun({ timeoutMs: 1500 })
    await expect(t.run).rejects.toMatchObject({
      name: 'JobsError',
      code: 'TASKAPP_ERR_JOBS_TIMEOUT',
      message: expect.stringContaining('it was cancelled and the task app stopped'),
    })
    expect(await backendStatus(t.backend, t.jobId()!)).toMatchObject({ status: 'cancelled' })
    expect(await isPortAvailable(portOf(t.taskAppUrl()!), { host: '127.0.0.1' })).toBe(true)
  })

  it('an abort before the job is submitted stops the starting app and submits nothing', async () => {
    const { backend } = await startBackend()
    const controller = new AbortController()
    const reason = new Error('changed my mind')
    const run = runInProcessJob({
      configPath: EXAMPLE_TOML,
      backend: { url: backend.url, apiKey: BACKEND_KEY },
      env: ENV,
      handleSignals: false,
      signal: controller.signal,
      taskApp: {
        configFactory: async () => {
          controller.abort(reason)
          return exampleTaskApp()
        },
        port: 0,
      },
    })
    await expect(run).rejects.toBe(reason)
  })
})

describe('runInProcessJob options', () => {
  const base = {
    configPath: EXAMPLE_TOML,
    backend: { apiKey: 'k' },
    taskApp: { configFactory: exampleTaskApp },
  }
  it.each([
    [{ ...base, jobType: 'rl' }, 'jobType must be "prompt_learning"'],
    [{ ...base, config: {} }, 'exactly one of configPath'],
    [{ ...base, taskApp: undefined }, 'taskApp is required'],
    [
      { ...base, taskApp: { configFactory: exampleTaskApp, handleSignals: true } },
      "taskApp.handleSignals is not taken: use runInProcessJob's own",
    ],
    [{ ...base, backend: { url: 'ftp://x' } }, 'backend.url must be an http(s) URL'],
    [{ ...base, backend: {} }, 'pass backend.apiKey or set SYNTH_API_KEY'],
    [{ ...base, apiKey: 'k' }, 'unknown option(s) apiKey'],
    [{ ...base, timeoutMs: 0 }, 'timeoutMs must be a whole number of milliseconds'],
  ])('%# refuses a bad option, naming it', async (options, words) => {
    await expect(runInProcessJob({ ...(options as RunInProcessJobOptions), env: ENV })).rejects.toMatchObject(
      {
        code: 'TASKAPP_ERR_INVALID_JOB_OPTIONS',
        message: expect.stringContaining(words),
      },
    )
  })

  it('a bad job config fails before any task app starts', async () => {
    let built = 0
    const run = runInProcessJob({
      config: { prompt_learning: { algorithm: 'gepa' } },
      backend: { url: 'http://127.0.0.1:9', apiKey: 'k' },
      env: ENV,
      handleSignals: false,
      taskApp: {
        configFactory: () => {
          built += 1
          return exampleTaskApp()
        },
        port: 0,
      },
    })
    await expect(run).rejects.toMatchObject({ code: 'TASKAPP_ERR_JOBS_INVALID_CONFIG' })
    expect(built).toBe(0)
  })

  it('leaves no SIGINT/SIGTERM listener behind (handleSignals: true)', async () => {
    const before = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]
    const run = runInProcessJob({
      config: { prompt_learning: { algorithm: 'gepa' } },
      backend: { url: 'http://127.0.0.1:9', apiKey: 'k' },
      env: ENV,
      taskApp: { configFactory: exampleTaskApp },
    })
    await expect(run).rejects.toMatchObject({ code: 'TASKAPP_ERR_JOBS_INVALID_CONFIG' })
    expect([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]).toEqual(before)
  })
})
