/**
 * The deterministic model over real HTTP: OpenAI-compatible replies, key check, errors, close.
 */
import { describe, expect, it } from 'vitest'
import { formatReflection } from '../backend/reflection-format'
import { createDeterministicModel, type DeterministicModelRequest } from './deterministic-model'

async function chat(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test code reads arbitrary JSON
  return { status: res.status, json: (await res.json()) as any }
}

const SYSTEM = 'Answer one of: billing, shipping.\nIf the ticket mentions "parcel", answer "shipping".'

describe('createDeterministicModel', () => {
  it('answers a task request from the rules, in the OpenAI chat completion shape', async () => {
    const seen: DeterministicModelRequest[] = []
    await using model = await createDeterministicModel({ onRequest: (r) => seen.push(r) })
    expect(model.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/)
    const { status, json } = await chat(model.url, {
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: SYSTEM },
        { role: 'user', content: [{ type: 'text', text: 'Where is my parcel?' }] },
      ],
    })
    expect(status).toBe(200)
    expect(json).toMatchObject({
      object: 'chat.completion',
      model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: 'shipping' }, finish_reason: 'stop' }],
      usage: { completion_tokens: 1 },
    })
    expect(json.usage.total_tokens).toBe(json.usage.prompt_tokens + 1)
    const other = await chat(model.url, {
      messages: [
        { role: 'system', content: SYSTEM },
        { role: 'user', content: 'Refund me' },
      ],
    })
    expect(other.json.choices[0].message.content).toBe('billing')
    expect(model.stats).toEqual({ task: 2, reflection: 0 })
    expect(seen.map((r) => r.answer)).toEqual(['shipping', 'billing'])
  })

  it('answers a reflection request with the prompt plus one rule from the failed examples', async () => {
    await using model = await createDeterministicModel()
    const reflection = formatReflection(SYSTEM, [
      {
        input: 'My invoice is wrong',
        output: 'shipping',
        reward: 0,
        feedback: JSON.stringify({ expected: 'billing' }),
      },
    ])
    const { json } = await chat(model.url, { messages: [{ role: 'user', content: reflection }] })
    expect(json.choices[0].message.content).toBe(
      `${SYSTEM}\nIf the input mentions "invoice", answer "billing".`,
    )
    expect(model.stats).toEqual({ task: 0, reflection: 1 })
  })

  it('requires its key when given one, and says what is wrong with a request', async () => {
    await using model = await createDeterministicModel({ apiKey: 'sk-model-0123' })
    const body = { messages: [{ role: 'user', content: 'x' }] }
    expect((await chat(model.url, body)).status).toBe(401)
    expect((await chat(model.url, body, { authorization: 'Bearer sk-model-0123' })).status).toBe(200)
    const auth = { authorization: 'Bearer sk-model-0123' }
    const empty = await chat(model.url, { messages: [] }, auth)
    expect(empty).toMatchObject({ status: 400, json: { error: { code: 'invalid_request_error' } } })
    expect((await chat(model.url, { ...body, stream: true }, auth)).status).toBe(400)
    const models = await fetch(`${model.url}/models`, { headers: auth })
    expect(await models.json()).toMatchObject({ data: [{ id: 'deterministic' }] })
    expect((await fetch(`${model.url}/nope`, { headers: auth })).status).toBe(404)
  })

  it('validates its options and closes on abort', async () => {
    await expect(createDeterministicModel({ port: -1 })).rejects.toMatchObject({
      code: 'TASKAPP_ERR_JOBS_INVALID_CONFIG',
    })
    const controller = new AbortController()
    const model = await createDeterministicModel({ signal: controller.signal })
    const taken = Number(new URL(model.url).port)
    await expect(createDeterministicModel({ port: taken })).rejects.toMatchObject({
      code: 'TASKAPP_ERR_JOBS_LISTEN_FAILED',
    })
    controller.abort()
    await expect
      .poll(async () =>
        fetch(`${model.url}/models`).then(
          () => 'open',
          () => 'closed',
        ),
      )
      .toBe('closed')
    await model.close()
  })
})
