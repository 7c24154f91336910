/**
 * Reading job configs, matching prompt patterns, and the Pareto front: the pure parts of the
 * backend, tested without sockets; plus createLocalBackend's option checks.
 */
import { describe, expect, it } from 'vitest'
import { readCreateRequest } from './job-config'
import { createLocalBackend } from './local-backend'
import { createRng, paretoFront, sampleFront, shuffle } from './pareto'
import { compilePattern, swapPrompt } from './prompt-template'
import { exampleConfig, g3Body } from './test-helpers'

describe('readCreateRequest', () => {
  it('reads a G3 body: seeds ranges, limits, policy, env and the worker token header', () => {
    const request = readCreateRequest(g3Body(exampleConfig('http://127.0.0.1:1/')), {
      'x-synthtunnel-worker-token': 'wt_1',
    })
    expect(request).toMatchObject({
      algorithm: 'gepa',
      kind: 'gepa_offline',
      autoStart: true,
      systemName: 'sdk-gepa-offline',
    })
    const gepa = request.gepa!
    expect(gepa.containerUrl).toBe('http://127.0.0.1:1')
    expect(gepa.workerToken).toBe('wt_1')
    expect(gepa.trainSeeds).toEqual(Array.from({ length: 40 }, (_, i) => i))
    expect(gepa.validationSeeds).toEqual(Array.from({ length: 16 }, (_, i) => 100 + i))
    expect(gepa).toMatchObject({
      budget: 120,
      maxConcurrent: 4,
      minibatchSize: 5,
      generations: 3,
      childrenPerGeneration: 2,
      healthCheck: 'warn',
    })
    expect(gepa.policyConfig).toEqual({ model: 'deterministic', provider: 'openai', temperature: 0 })
    expect(gepa.envName).toBe('ticket-routing')
    expect(gepa.wildcards).toEqual(['ticket'])
  })

  it('reads G1/G2 bodies, the task_data seed pools and the legacy task_app_url', () => {
    const pl = {
      task_app_url: 'http://127.0.0.1:2',
      task_app_api_key: 'k',
      rollout_health_check_mode: 'skip',
      initial_prompt: {
        messages: [
          { role: 'user', pattern: 'u', order: 1 },
          { role: 'system', content: 's', order: 0 },
        ],
      },
      task_data: {
        train_pools: { reflection_seeds: [1, 2], pareto_seeds: [2, 3] },
        validation_seeds: { start: 10, end: 4, step: -2 },
      },
    }
    const request = readCreateRequest(
      { algorithm: 'gepa', config_body: { prompt_learning: pl }, auto_start: false },
      {},
    )
    expect(request).toMatchObject({ algorithm: 'gepa', autoStart: false })
    expect(request.gepa).toMatchObject({
      containerApiKey: 'k',
      healthCheck: 'off',
      optimizedIndex: 0,
      trainSeeds: [1, 2, 3],
      validationSeeds: [10, 8, 6],
    })
    expect(request.gepa?.initialMessages).toEqual([
      { role: 'system', pattern: 's' },
      { role: 'user', pattern: 'u' },
    ])
    expect(readCreateRequest({ config: pl }, {}, 'mipro')).toMatchObject({
      algorithm: 'mipro',
      kind: 'mipro_offline',
    })
    expect(readCreateRequest({ kind: 'voyager_offline', config: {} }, {}).gepa).toBeUndefined()
  })

  it.each([
    [{ container_url: 'ftp://x' }, 'prompt_learning.container_url must be an http or https URL'],
    [{ container_url: undefined }, 'prompt_learning.container_url must be the task app URL'],
    [
      { initial_prompt: { messages: [{ role: 'user', pattern: 'x' }] } },
      'must be a list with a system message',
    ],
    [
      { gepa: { evaluation: { seeds: [1.5], validation_seeds: [1] } } },
      'gepa.evaluation.seeds must be a list of integers',
    ],
    [
      { gepa: { evaluation: { seeds: [1], validation_seeds: [1] }, rollout: { max_concurrent: 0 } } },
      'gepa.rollout.max_concurrent must be an integer from 1 to 256',
    ],
    [{ rollout_health_check_mode: 'maybe' }, 'rollout_health_check_mode must be "strict", "warn" or "off"'],
  ])('names the field of a bad config: %j', (patch, message) => {
    const body = g3Body({ ...exampleConfig('http://127.0.0.1:1'), ...patch })
    expect(() => readCreateRequest(body, {})).toThrow(
      expect.objectContaining({
        code: 'TASKAPP_ERR_JOBS_INVALID_CONFIG',
        message: expect.stringContaining(message),
      }),
    )
  })
})

describe('prompt patterns', () => {
  it('match whitespace-tolerantly, capture wildcards and render them into the candidate', () => {
    const pattern = compilePattern(
      { role: 'system', pattern: 'Sort {domain} tickets.\nAnswer {domain}: {x}' },
      ['domain'],
    )
    const { messages, swapped } = swapPrompt(
      [
        { role: 'system', content: 'Sort  cargo tickets. Answer cargo: {x}' },
        { role: 'user', content: 'Sort cargo tickets. Answer cargo: {x}' },
        { role: 'system', content: 'Sort cargo tickets. Answer ships: {x}' },
      ],
      pattern,
      'Route {domain} tickets; {other} stays.',
    )
    expect(swapped).toBe(1)
    expect(messages.map((m) => m.content)).toEqual([
      'Route cargo tickets; {other} stays.',
      'Sort cargo tickets. Answer cargo: {x}',
      'Sort cargo tickets. Answer ships: {x}',
    ])
  })
})

describe('the Pareto front', () => {
  const seeds = [1, 2, 3]
  const c = (id: string, ...s: number[]) => ({
    id,
    scores: new Map(seeds.map((seed, i) => [seed, s[i] ?? 0])),
  })

  it('keeps the undominated leaders, weighted by the seeds they lead on', () => {
    expect(paretoFront([c('a', 1, 0, 0), c('b', 0, 1, 1), c('d', 0, 1, 0)], seeds)).toEqual([
      { id: 'a', leads: 1 },
      { id: 'b', leads: 2 },
    ])
    expect(paretoFront([c('a', 1, 1, 1), c('b', 1, 1, 1)], seeds)).toEqual([{ id: 'a', leads: 1 }])
  })

  it('samples reproducibly with a seeded PRNG', () => {
    const front = [
      { id: 'a', leads: 1 },
      { id: 'b', leads: 3 },
    ]
    const draw = (seed: number) => {
      const rng = createRng(seed)
      return Array.from({ length: 8 }, () => sampleFront(front, rng))
    }
    expect(draw(7)).toEqual(draw(7))
    expect(new Set(draw(7).concat(draw(8)))).toEqual(new Set(['a', 'b']))
    expect(shuffle([1, 2, 3, 4], createRng(1)).sort()).toEqual([1, 2, 3, 4])
  })
})

describe('createLocalBackend options', () => {
  it.each([
    [{}, '"upstream" must be'],
    [{ upstream: { baseUrl: 'nope' } }, 'upstream.baseUrl must be an absolute http(s) URL'],
    [{ upstream: { baseUrl: 'http://x/v1' }, port: 70_000 }, '"port" must be an integer'],
    [{ upstream: { baseUrl: 'http://x/v1' }, apiKeys: [] }, '"apiKeys" must be a non-empty array'],
    [{ upstream: { baseUrl: 'http://x/v1' }, signingKeyId: 'a:b' }, '"signingKeyId" must be'],
    [{ upstream: { baseUrl: 'http://x/v1' }, maxActiveJobs: 0 }, '"maxActiveJobs" must be'],
  ])('rejects %j', async (options, message) => {
    await expect(createLocalBackend(options as never)).rejects.toMatchObject({
      code: 'TASKAPP_ERR_JOBS_INVALID_CONFIG',
      message: expect.stringContaining(message),
    })
  })
})
