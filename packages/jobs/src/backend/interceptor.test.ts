/**
 * The interceptor on real sockets: a task app posting to `${inference_url}/chat/completions`, the
 * backend swapping the candidate's text in (wildcards carried over), the deterministic model as
 * upstream seeing exactly what was forwarded.
 */
import type { TaskAppConfig } from '@taskapp/task-server'
import { describe, expect, it } from 'vitest'
import { createDeterministicModel, type DeterministicModelRequest } from '../model/deterministic-model'
import { createLocalBackend } from './local-backend'
import {
  BACKEND_KEY,
  call,
  exampleConfig,
  g3Body,
  names,
  serveExampleTaskApp,
  serveTaskApp,
  untilEnd,
} from './test-helpers'

/**
 * A small task app: seed n is a ticket about screens (label alpha) or keyboards (beta); its system
 * prompt names a domain that varies with the seed, so the prompt pattern needs a wildcard.
 */
function sortingApp(systemOf: (domain: string) => string): TaskAppConfig {
  return {
    appId: 'sorting',
    name: 'Sorting',
    description: 'Sort tickets into alpha or beta.',
    requireApiKey: false,
    containerAuth: { mode: 'disabled' },
    provideTasksetDescription: () => ({}),
    provideTaskInstances: () => [],
    rollout: async (request) => {
      const seed = request.env.seed ?? 0
      const domain = seed % 2 === 0 ? 'hardware' : 'software'
      const topic = seed % 3 === 0 ? 'screens' : 'keyboards'
      const inferenceUrl = request.policy.config.inference_url as string
      const res = await fetch(`${inferenceUrl}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'any',
          messages: [
            { role: 'system', content: systemOf(domain) },
            { role: 'user', content: `Ticket ${seed}: my ${topic} are broken.` },
          ],
        }),
      })
      const json = (await res.json()) as { choices: { message: { content: string } }[] }
      const answer = json.choices[0]?.message.content
      const expected = topic === 'screens' ? 'alpha' : 'beta'
      return {
        trace_correlation_id: request.trace_correlation_id,
        reward_info: {
          outcome_reward: answer === expected ? 1 : 0,
          details: { expected, predicted: answer },
        },
      }
    },
  }
}

function sortingConfig(url: string, pattern: string): Record<string, unknown> {
  return {
    container_url: url,
    initial_prompt: {
      messages: [
        { role: 'system', order: 0, pattern },
        { role: 'user', order: 1, pattern: 'Ticket {n}: {text}' },
      ],
      wildcards: { domain: 'REQUIRED', n: 'REQUIRED', text: 'REQUIRED' },
    },
    policy: { model: 'det' },
    gepa: {
      evaluation: { seeds: { start: 0, end: 12 }, validation_seeds: { start: 20, end: 26 } },
      rollout: { budget: 40, max_concurrent: 2, minibatch_size: 4 },
      population: { num_generations: 1, children_per_generation: 1 },
    },
  }
}

/**
 * A GEPA job over the sorting app whose system prompt is `appPrompt(domain)`, with `pattern` as the
 * job's initial prompt, run to its end on a local backend and the deterministic model; `seen` is
 * every model request.
 */
async function runSortingJob(appPrompt: (domain: string) => string, pattern: string) {
  const seen: DeterministicModelRequest[] = []
  const task = await serveTaskApp(sortingApp(appPrompt))
  await using model = await createDeterministicModel({ onRequest: (r) => seen.push(r) })
  await using backend = await createLocalBackend({ upstream: { baseUrl: model.url } })
  const created = await call(
    backend,
    'POST',
    '/api/v1/offline/jobs',
    g3Body(sortingConfig(task.url, pattern)),
  )
  return { seen, ...(await untilEnd(backend, created.json.job_id as string)) }
}

describe('the interceptor', { timeout: 60_000 }, () => {
  it('swaps the candidate text in for the matched system prompt, wildcard values carried over', async () => {
    const { seen, status } = await runSortingJob(
      (d) => `You sort ${d} tickets. Answer one of: beta, alpha.`,
      'You sort {domain} tickets.   Answer one of: beta, alpha.',
    )
    expect(status.status).toBe('succeeded')
    expect(status.best_reward).toBeGreaterThan(status.baseline_reward as number)
    const prompt = status.best_candidate?.system_prompt ?? ''
    expect(prompt).toContain('If the input mentions "screens", answer "alpha".')
    const systems = seen.filter((r) => r.kind === 'task').map((r) => r.messages[0]?.content ?? '')
    const swapped = systems.filter((s) => s.includes('If the input mentions'))
    expect(swapped.length).toBeGreaterThan(0)
    for (const s of swapped) expect(s).toMatch(/^You sort (hardware|software) tickets\./)
    expect(systems.some((s) => s.includes('{domain}'))).toBe(false)
    // The candidate keeps the wildcard; each call got its own value.
    expect(prompt.startsWith('You sort {domain} tickets.')).toBe(true)
  })

  it('warns once when the task app sends a prompt the pattern does not match, and forwards it unchanged', async () => {
    const { seen, status, sse } = await runSortingJob(
      (d) => `Sort the ${d} ticket. Answer one of: beta, alpha.`,
      'You sort {domain} tickets. Answer one of: beta, alpha.',
    )
    expect(status.status).toBe('succeeded')
    const warnings = sse.events.filter((e) => e.data.warning === 'prompt_not_matched')
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({
      level: 'warning',
      message: expect.stringContaining('initial_prompt'),
    })
    expect(names(sse.events)).toContain('baseline')
    for (const r of seen.filter((x) => x.kind === 'task'))
      expect(r.messages[0]?.content).toMatch(/^Sort the /)
  })

  it('forwards with the upstream key; a wrong upstream key fails the job', async () => {
    const task = await serveExampleTaskApp()
    await using model = await createDeterministicModel({ apiKey: 'sk-upstream-0123' })
    await using good = await createLocalBackend({
      upstream: { baseUrl: model.url, apiKey: 'sk-upstream-0123' },
    })
    const pl = exampleConfig(task.url, { population: { num_generations: 1, children_per_generation: 1 } })
    const ok = await call(good, 'POST', '/api/v1/offline/jobs', g3Body(pl))
    expect((await untilEnd(good, ok.json.job_id as string)).status.status).toBe('succeeded')
    await using bad = await createLocalBackend({ upstream: { baseUrl: model.url, apiKey: 'sk-wrong' } })
    const failed = await call(bad, 'POST', '/api/v1/offline/jobs', g3Body(pl))
    const { status } = await untilEnd(bad, failed.json.job_id as string)
    expect(status).toMatchObject({ status: 'failed', error_code: 'TASKAPP_ERR_JOBS_ROLLOUT_FAILED' })
  })

  it('answers 404 for an unknown candidate, with no backend key needed', async () => {
    await using backend = await createLocalBackend({
      upstream: { baseUrl: 'http://127.0.0.1:9/v1' },
      apiKeys: [BACKEND_KEY],
    })
    for (const path of [
      '/interceptor/cand_nope/v1/chat/completions',
      '/interceptor/cand_nope/trace_1/v1/chat/completions',
    ]) {
      const res = await fetch(`${backend.url}${path}`, { method: 'POST', body: '{"messages":[]}' })
      expect(res.status).toBe(404)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unknown_candidate')
    }
  })
})
