/* eslint-disable @typescript-eslint/no-explicit-any -- JSON response bodies, checked field by field */
import { createTaskApp } from '@taskapp/sdk'
import { describe, expect, it } from 'vitest'
import { LABELS, loadDataset } from './dataset'
import { keywordPolicy } from './policies'
import { APP_ID, buildConfig } from './task-app'
import { chatReply, serveApp, startFakeChatServer } from './test-helpers'

const KEY = 'example-test-key'
const auth = { 'x-api-key': KEY, 'content-type': 'application/json' }
const dataset = loadDataset()

async function served() {
  return serveApp(createTaskApp(buildConfig({ apiKeys: [KEY], dataset })))
}

async function rollout(url: string, body: unknown) {
  const res = await fetch(`${url}/rollout`, { method: 'POST', headers: auth, body: JSON.stringify(body) })
  return { status: res.status, json: (await res.json()) as any }
}

describe('the example task app over HTTP (createTaskApp on 127.0.0.1:0)', () => {
  it('answers health (with the key) and refuses without it', async () => {
    await using app = await served()
    const ok = await fetch(`${app.url}/health`, { headers: auth })
    expect(ok.status).toBe(200)
    expect(((await ok.json()) as any).healthy).toBe(true)
    const refused = await fetch(`${app.url}/health`)
    expect(refused.status).toBe(400)
  })

  it('serves task info with the labels and the dataset splits', async () => {
    await using app = await served()
    const info = (await (await fetch(`${app.url}/info`, { headers: auth })).json()) as any
    expect(info.service.task.id).toBe(APP_ID)
    expect(info.dataset.splits).toEqual(['train', 'validation', 'test'])
    expect(info.rubrics.outcome.criteria[0].id).toBe('exact_label')
    const taskset = (await (await fetch(`${app.url}/task_info`, { headers: auth })).json()) as any
    expect(taskset.taskset.sizes).toEqual({ train: 200, validation: 50, test: 50 })
    expect(taskset.taskset.labels).toEqual([...LABELS])
    const one = (await (await fetch(`${app.url}/task_info?seed=3`, { headers: auth })).json()) as any
    expect(one.task_metadata).toMatchObject({ seed: 3, example_id: dataset.exampleForSeed(3).id })
    const two = (await (await fetch(`${app.url}/task_info?seed=1&seed=2`, { headers: auth })).json()) as any
    expect(two).toHaveLength(2)
  })

  it('runs a baseline rollout on the seeded ticket and scores it', async () => {
    await using app = await served()
    const ticket = dataset.exampleForSeed(9, 'test')
    const predicted = (await keywordPolicy().classify(ticket.text)).label
    const { status, json } = await rollout(app.url, {
      trace_correlation_id: 'http-9',
      env: { seed: 9, config: { split: 'test' } },
      policy: { policy_name: 'baseline', config: {} },
    })
    expect(status).toBe(200)
    expect(json.trace_correlation_id).toBe('http-9')
    expect(json.reward_info.outcome_reward).toBe(predicted === ticket.label ? 1 : 0)
    expect(json.reward_info.details).toMatchObject({
      example_id: ticket.id,
      expected: ticket.label,
      predicted,
    })
  })

  it('runs the chat policy against a local fake OpenAI-compatible server', async () => {
    // The fake is a tiny HTTP server on 127.0.0.1 (a legitimate local peer); no real endpoint is called.
    await using chat = await startFakeChatServer((req) => {
      const text = req.body.messages?.[1]?.content ?? ''
      return chatReply(dataset.tickets.find((t) => t.text === text)?.label ?? 'billing')
    })
    await using app = await served()
    const { status, json } = await rollout(app.url, {
      trace_correlation_id: 'chat-1',
      env: { seed: 4, config: { split: 'validation' } },
      policy: { policy_name: 'chat', config: { inference_url: chat.url, model: 'fake-model' } },
    })
    expect(status).toBe(200)
    expect(json.reward_info.outcome_reward).toBe(1)
    expect(json.reward_info.details.policy).toBe('chat:fake-model')
    expect(chat.requests).toHaveLength(1)
  })

  it.each([
    { name: 'unknown split', env: { seed: 1, config: { split: 'dev' } }, policy: { config: {} } },
    {
      name: 'bad inference_url',
      env: { seed: 1, config: {} },
      policy: { config: { inference_url: 'file:///etc/passwd' } },
    },
  ])('rejects an invalid request ($name) with 422 before the rollout runs', async ({ env, policy }) => {
    await using app = await served()
    const { status, json } = await rollout(app.url, { trace_correlation_id: 'bad', env, policy })
    expect(status).toBe(422)
    expect(json.detail.error.code).toBe('invalid_request')
  })

  it('an unknown policy name fails the rollout (500 rollout_failed; the task server hides the message)', async () => {
    await using app = await served()
    const { status, json } = await rollout(app.url, {
      trace_correlation_id: 'p',
      env: { seed: 1, config: {} },
      policy: { policy_name: 'oracle', config: {} },
    })
    expect(status).toBe(500)
    expect(json.detail.error.code).toBe('rollout_failed')
    expect(json.detail.error.message).toMatch(/error id/)
  })
})
