/**
 * Helpers for the backend's tests (not in the tarball): the example task app on a real socket, a
 * GEPA config for it, JSON calls to the backend and an SSE reader.
 */
import { createTaskApp, type ContainerAuthConfig, type TaskAppConfig } from '@taskapp/task-server'
import { listenLoopback } from '@taskapp/test-utils'
import { onTestFinished } from 'vitest'
import { CHAT_SYSTEM_PROMPT } from '../../../../apps/example/src/policies'
import { buildConfig } from '../../../../apps/example/src/task-app'
import { createDeterministicModel, type DeterministicModel } from '../model/deterministic-model'
import { createLocalBackend, type LocalBackend } from './local-backend'
import type { JobEventWire, JobStatusWire } from './wire-shapes'

/** Key of the backend's job API in tests. */
export const BACKEND_KEY = 'sk-backend-test-0123456789'
/** Key of the example task app in tests. */
export const TASK_KEY = 'sk-task-test-0123456789'
/** Auth headers of the backend's job API. */
export const AUTH = Object.freeze({ authorization: `Bearer ${BACKEND_KEY}` })

/** The example's system prompt: what `initial_prompt` must match. */
export { CHAT_SYSTEM_PROMPT }

/** A task app on 127.0.0.1 that counts the rollouts it ran. */
export interface RunningTaskApp {
  readonly url: string
  /** Rollouts the app finished (successful or not). */
  readonly rollouts: () => number
}

/** Serves `config` with the real task server on 127.0.0.1:0; closed when the test ends. */
export async function serveTaskApp(config: TaskAppConfig): Promise<RunningTaskApp> {
  let rollouts = 0
  const app = createTaskApp({
    ...config,
    onRolloutComplete: () => {
      rollouts += 1
    },
  })
  const server = await listenLoopback(app)
  onTestFinished(async () => {
    await server.close()
    await app.lifecycle.close()
  })
  return { url: server.url, rollouts: () => rollouts }
}

/** The example task app's config (ticket routing), with API key {@link TASK_KEY} and optional container auth. */
export function exampleTaskAppConfig(options: { containerAuth?: ContainerAuthConfig } = {}): TaskAppConfig {
  return {
    ...buildConfig({ apiKeys: [TASK_KEY] }),
    containerAuth: options.containerAuth ?? { mode: 'disabled' },
  }
}

/** The example task app, served. */
export function serveExampleTaskApp(
  options: { containerAuth?: ContainerAuthConfig } = {},
): Promise<RunningTaskApp> {
  return serveTaskApp(exampleTaskAppConfig(options))
}

/** A GEPA `prompt_learning` table for the example task app. */
export function exampleConfig(
  containerUrl: string,
  gepa: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    algorithm: 'gepa',
    container_url: containerUrl,
    container_api_key: TASK_KEY,
    initial_prompt: {
      id: 'ticket_routing',
      messages: [
        { role: 'system', order: 0, pattern: CHAT_SYSTEM_PROMPT },
        { role: 'user', order: 1, pattern: '{ticket}' },
      ],
      wildcards: { ticket: 'REQUIRED' },
    },
    policy: { model: 'deterministic', provider: 'openai', temperature: 0 },
    env_config: { split: 'train' },
    gepa: {
      env_name: 'ticket-routing',
      evaluation: { seeds: { start: 0, end: 40 }, validation_seeds: { start: 100, end: 116 } },
      rollout: { budget: 120, max_concurrent: 4, minibatch_size: 5 },
      population: { num_generations: 3, children_per_generation: 2 },
      ...gepa,
    },
  }
}

/** A G3 create body around a `prompt_learning` table. */
export function g3Body(
  promptLearning: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    kind: 'gepa_offline',
    technique: 'discrete_optimization',
    config_mode: 'DEFAULT',
    system: { name: 'sdk-gepa-offline', reuse: true },
    config: { prompt_learning: promptLearning },
    metadata: { backend_base_url: 'http://127.0.0.1/api' },
    auto_start: true,
    ...extra,
  }
}

/** A JSON call to the backend: status and parsed body. */
export async function call(
  backend: LocalBackend,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = AUTH,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test code reads arbitrary JSON
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${backend.url}${path}`, {
    method,
    headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, json: text === '' ? undefined : (JSON.parse(text) as unknown) }
}

/** What an SSE stream delivered: the events, the `id:` lines, and whether it ended with `[DONE]`. */
export interface SseResult {
  events: JobEventWire[]
  ids: number[]
  done: boolean
}

/**
 * Reads an SSE stream until `data: [DONE]`, the end of the body, or `stopAfter` events; each
 * `data:` line is one JSON event.
 */
export async function readSse(
  url: string,
  headers: Record<string, string>,
  stopAfter = Infinity,
): Promise<SseResult> {
  const controller = new AbortController()
  const res = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  })
  if (res.status !== 200 || res.body === null)
    throw new Error(`SSE answered ${res.status}: ${await res.text()}`)
  const out: SseResult = { events: [], ids: [], done: false }
  const decoder = new TextDecoder()
  let buffer = ''
  try {
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true })
      let cut: number
      while ((cut = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, cut)
        buffer = buffer.slice(cut + 2)
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) out.ids.push(Number(line.slice(4)))
          if (!line.startsWith('data: ')) continue
          const data = line.slice(6)
          if (data === '[DONE]') {
            out.done = true
            return out
          }
          out.events.push(JSON.parse(data) as JobEventWire)
          if (out.events.length >= stopAfter) return out
        }
      }
    }
    return out
  } finally {
    controller.abort()
  }
}

/** Follows a job's SSE stream to its end, then returns its status. */
export async function untilEnd(
  backend: LocalBackend,
  jobId: string,
): Promise<{ status: JobStatusWire; sse: SseResult }> {
  const sse = await readSse(`${backend.url}/api/v1/offline/jobs/${jobId}/events/stream`, AUTH)
  const reply = await call(backend, 'GET', `/api/v1/offline/jobs/${jobId}`)
  return { status: reply.json as JobStatusWire, sse }
}

/** The event names (after `learning.policy.gepa.`) in order. */
export function names(events: readonly JobEventWire[]): string[] {
  return events.map((e) => e.type.replace(/^learning\.policy\.\w+\./, ''))
}

/**
 * A local backend that accepts {@link BACKEND_KEY}, with the deterministic model as its upstream;
 * `await using` closes both.
 */
export async function backendWithModel(): Promise<
  { backend: LocalBackend; model: DeterministicModel } & AsyncDisposable
> {
  const model = await createDeterministicModel()
  const backend = await createLocalBackend({ upstream: { baseUrl: model.url }, apiKeys: [BACKEND_KEY] })
  return {
    backend,
    model,
    async [Symbol.asyncDispose]() {
      await backend.close()
      await model.close()
    },
  }
}
