/**
 * From TOML and overrides to the G3 create body, as synth-ai's builder does it (reference §1.2,
 * §1.3), and every bad field named in one TASKAPP_ERR_JOBS_INVALID_CONFIG. No network here.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { JobsError, PromptLearningJob } from '../index'
import { deepUpdate } from './merge'

const fixture = new URL('../fixtures/gepa.toml', import.meta.url).pathname
const base = { apiKey: 'sk-test', backendUrl: 'http://127.0.0.1:9', env: {} }

function gepaConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    prompt_learning: {
      algorithm: 'gepa',
      container_url: 'http://127.0.0.1:8114',
      gepa: { evaluation: { seeds: [0, 1, 2], validation_seeds: [3] } },
      ...extra,
    },
  }
}

async function invalid(options: Parameters<typeof PromptLearningJob.fromConfig>[0]): Promise<JobsError> {
  const err = await PromptLearningJob.fromConfig(options).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(JobsError)
  expect((err as JobsError).code).toBe('TASKAPP_ERR_JOBS_INVALID_CONFIG')
  return err as JobsError
}

describe('deepUpdate (synth-ai dict.py deep_update)', () => {
  it('splits dot keys, creates objects, merges objects, replaces arrays and non-objects, in key order', () => {
    const target = { a: { b: 1, c: [1, 2] }, d: 5 }
    deepUpdate(target, { 'a.b': 2, 'a.c': [9], 'd.e': 1, a: { f: { g: 1 } }, 'a.f.h': 2 })
    expect(target).toEqual({ a: { b: 2, c: [9], f: { g: 1, h: 2 } }, d: { e: 1 } })
  })

  it('copies values instead of sharing them', () => {
    const value = { list: [1] }
    const target: Record<string, unknown> = {}
    deepUpdate(target, { x: value })
    value.list.push(2)
    expect(target).toEqual({ x: { list: [1] } })
  })

  it('refuses a key that would reach a prototype', () => {
    expect(() => deepUpdate({}, { '__proto__.polluted': 1 })).toThrow(/reserved segment "__proto__"/)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})

describe('PromptLearningJob.fromConfig: the G3 create body', () => {
  it('reads the TOML, takes the task app URL from overrides.task_url and sends it as prompt_learning.container_url', async () => {
    await using job = await PromptLearningJob.fromConfig({
      ...base,
      configPath: fixture,
      overrides: {
        task_url: 'http://127.0.0.1:9000/',
        'prompt_learning.gepa.rollout.budget': 12,
        'prompt_learning.gepa.evaluation.seeds': [1, 2],
        metadata: { run: 'ci' },
        auto_start: false,
      },
    })
    const body = job.createBody
    expect(body).toMatchObject({
      kind: 'gepa_offline',
      technique: 'discrete_optimization',
      config_mode: 'DEFAULT',
      system: { name: 'sdk-gepa-offline', reuse: true },
      metadata: { run: 'ci', backend_base_url: 'http://127.0.0.1:9/api' },
      auto_start: false,
    })
    const pl = body.config.prompt_learning as Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any -- deep reads of the sent JSON
    expect(pl.container_url).toBe('http://127.0.0.1:9000')
    expect(pl.gepa.rollout).toEqual({ budget: 12, max_concurrent: 2, minibatch_size: 2 })
    expect(pl.gepa.evaluation.seeds).toEqual([1, 2])
    expect(pl.initial_prompt.messages).toHaveLength(2)
    expect(pl.rollout_health_check_mode).toBe('warn')
    expect(Object.keys(body)).not.toContain('overrides')
    expect(job.containerUrl).toBe('http://127.0.0.1:9000')
  })

  it('falls back to prompt_learning.container_url, then task_app_url; the override "prompt_learning.container_url" wins over the file', async () => {
    await using fromFile = await PromptLearningJob.fromConfig({ ...base, configPath: fixture })
    expect(fromFile.containerUrl).toBe('http://127.0.0.1:8114')
    await using overridden = await PromptLearningJob.fromConfig({
      ...base,
      configPath: fixture,
      overrides: { 'prompt_learning.container_url': 'http://localhost:7000' },
    })
    expect(overridden.containerUrl).toBe('http://localhost:7000')
  })

  it('wraps a bare prompt_learning table, maps mipro to mipro_offline, strips container keys', async () => {
    await using job = await PromptLearningJob.fromConfig({
      ...base,
      config: {
        algorithm: 'mipro',
        container_url: 'http://127.0.0.1:1',
        container_api_key: 'secret',
        mipro: { bootstrap_train_seeds: [0, 1], online_pool: { start: 2, end: 10 } },
      },
    })
    expect(job.createBody.kind).toBe('mipro_offline')
    expect(job.createBody.system.name).toBe('sdk-mipro-offline')
    expect(job.createBody.config.prompt_learning).not.toHaveProperty('container_api_key')
  })

  it('normalises a rollout health-check mode and leaves the default out then', async () => {
    await using job = await PromptLearningJob.fromConfig({
      ...base,
      config: gepaConfig({ rollout_health_check_mode: 'best_effort' }),
      overrides: { 'prompt_learning.gepa.backend_rollout_health_check_mode': 'required' },
    })
    const pl = job.createBody.config.prompt_learning as Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any -- deep reads of the sent JSON
    expect(pl.rollout_health_check_mode).toBe('warn')
    expect(pl.gepa.backend_rollout_health_check_mode).toBe('strict')
  })

  it('drops /api and /api/v1 from backendUrl (metadata.backend_base_url is <root>/api)', async () => {
    await using job = await PromptLearningJob.fromConfig({
      ...base,
      backendUrl: 'http://127.0.0.1:9/api/v1/',
      config: gepaConfig(),
    })
    expect(job.backendUrl).toBe('http://127.0.0.1:9')
    expect(job.createBody.metadata.backend_base_url).toBe('http://127.0.0.1:9/api')
  })

  it('resolves the backend and key from env (never writing it)', async () => {
    const env = { SYNTH_BACKEND_URL: 'http://127.0.0.1:4242/api', SYNTH_API_KEY: 'sk-env' }
    await using job = await PromptLearningJob.fromConfig({ env, config: gepaConfig() })
    expect(job.backendUrl).toBe('http://127.0.0.1:4242')
    expect(env).toEqual({ SYNTH_BACKEND_URL: 'http://127.0.0.1:4242/api', SYNTH_API_KEY: 'sk-env' })
  })
})

describe('PromptLearningJob.fromConfig: bad config names each field', () => {
  it.each([
    [{ prompt_learning: { container_url: 'http://x', gepa: {} } }, 'prompt_learning.algorithm is required'],
    [
      { prompt_learning: { algorithm: 'sgd', container_url: 'http://x' } },
      'prompt_learning.algorithm must be "gepa" or "mipro"; got "sgd"',
    ],
    [
      { prompt_learning: { algorithm: 'gepa', container_url: 'http://x' } },
      'prompt_learning.gepa is required',
    ],
    [
      gepaConfig({ gepa: { evaluation: { validation_seeds: [1] } } }),
      'prompt_learning.gepa.evaluation.seeds (or train_seeds',
    ],
    [
      gepaConfig({ gepa: { evaluation: { seeds: [1], validation_seeds: ['a'] } } }),
      'prompt_learning.gepa.evaluation.validation_seeds must hold integers only',
    ],
    [gepaConfig({ container_url: undefined }), 'the task app URL is missing'],
    [
      gepaConfig({ container_url: 'ftp://x' }),
      'prompt_learning.container_url must be an http(s) URL; got "ftp://x"',
    ],
    [
      { prompt_learning: { algorithm: 'mipro', container_url: 'http://x', mipro: { online_pool: [1] } } },
      'prompt_learning.mipro.bootstrap_train_seeds is required',
    ],
    [
      gepaConfig({ rollout_health_check_mode: 'sometimes' }),
      'prompt_learning.rollout_health_check_mode must be strict, warn or off',
    ],
    [{ ...gepaConfig(), policy_optimization: {} }, 'policy_optimization: not accepted'],
    [{ ...gepaConfig(), algorithm: 'gepa' }, 'algorithm: belongs in [prompt_learning]'],
  ])('%j → %s', async (config, message) => {
    const err = await invalid({ ...base, config })
    expect(err.message).toContain(message)
  })

  it('lists every problem of one config in one error', async () => {
    const err = await invalid({ ...base, config: { prompt_learning: { algorithm: 'gepa', gepa: {} } } })
    expect(err.message).toContain('the task app URL is missing')
    expect(err.message).toContain('prompt_learning.gepa.evaluation.seeds')
    expect(err.message).toContain('prompt_learning.gepa.evaluation.validation_seeds')
  })

  it('names bad overrides', async () => {
    const err = await invalid({
      ...base,
      config: gepaConfig(),
      overrides: { 'prompt_learning.container_api_key': 'k', 'policy_optimization.x': 1, auto_start: 'yes' },
    })
    expect(err.message).toContain('overrides.prompt_learning.container_api_key')
    expect(err.message).toContain('overrides.policy_optimization.x')
    expect(err.message).toContain('overrides.auto_start must be true or false')
  })

  it('needs workerToken for a SynthTunnel task app URL', async () => {
    const err = await invalid({
      ...base,
      config: gepaConfig({ container_url: 'http://127.0.0.1:1/s/rt_abc' }),
    })
    expect(err.message).toContain('workerToken is required')
  })

  it.each([
    [{ config: gepaConfig(), configPath: fixture }, 'exactly one of configPath'],
    [{}, 'exactly one of configPath'],
    [{ config: gepaConfig(), taskUrl: 'http://x' }, 'Unknown option(s) taskUrl'],
    [{ config: gepaConfig(), apiKey: undefined }, 'apiKey is required: pass apiKey or set SYNTH_API_KEY'],
    [{ config: gepaConfig(), backendUrl: 'ftp://host' }, 'backendUrl must be an http(s) URL'],
    [{ config: gepaConfig(), pollIntervalMs: 0 }, 'pollIntervalMs must be a positive integer'],
    [{ config: gepaConfig(), overrides: [] }, 'overrides must be an object'],
    [{ config: 'x' }, 'config must be an object'],
  ])('options %j → %s', async (options, message) => {
    const err = await invalid({ ...base, ...options } as never)
    expect(err.message).toContain(message)
  })

  it('names configPath when the file is missing or is not TOML (with line and column)', async () => {
    const missing = await invalid({ ...base, configPath: '/nonexistent/job.toml' })
    expect(missing.message).toContain('configPath: cannot read "/nonexistent/job.toml"')
    const dir = await mkdtemp(join(tmpdir(), 'jobs-config-'))
    onTestFinished(() => rm(dir, { recursive: true, force: true }))
    const bad = join(dir, 'bad.toml')
    await writeFile(bad, '[prompt_learning]\nalgorithm = "gepa"\nbudget = = 3\n')
    const err = await invalid({ ...base, configPath: bad })
    expect(err.message).toMatch(/is not valid TOML at line 3, column \d+/)
    expect(err.cause).toBeDefined()
  })
})
