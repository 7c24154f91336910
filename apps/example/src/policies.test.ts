import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LABELS, loadDataset } from './dataset'
import { ExampleError } from './errors'
import {
  BASELINE_FALLBACK_LABEL,
  CHAT_SYSTEM_PROMPT,
  chatPolicy,
  keywordPolicy,
  parseLabel,
  selectPolicy,
} from './policies'
import { chatReply, startFakeChatServer } from './test-helpers'

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise
  } catch (err) {
    expect(err).toBeInstanceOf(ExampleError)
    return (err as ExampleError).code
  }
  return undefined
}

describe('keywordPolicy (the baseline)', () => {
  const policy = keywordPolicy()

  it.each([
    ['I was charged twice on my card', 'billing'],
    ['The courier lost my parcel', 'shipping'],
    ['The app crashes with an error', 'technical'],
    ['I forgot my password', 'account'],
    ['Thank you, great shop!', 'feedback'],
  ] as const)('%s → %s', async (text, label) => {
    expect((await policy.classify(text)).label).toBe(label)
  })

  it('breaks ties by label order and falls back when nothing matches', async () => {
    // one billing word, one shipping word: billing is listed first
    expect((await policy.classify('invoice parcel')).label).toBe('billing')
    expect(await policy.classify('zzz qqq')).toEqual({
      label: BASELINE_FALLBACK_LABEL,
      raw: 'no keyword matched',
    })
  })

  it('always answers a known label, the same one for the same text', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string(), async (text) => {
        const a = await policy.classify(text)
        const b = await policy.classify(text)
        expect(LABELS).toContain(a.label)
        expect(b).toEqual(a)
      }),
    )
  })

  it('is a real but imperfect baseline on the committed test split', async () => {
    const test = loadDataset().split('test')
    let correct = 0
    for (const ticket of test) if ((await policy.classify(ticket.text)).label === ticket.label) correct++
    const accuracy = correct / test.length
    expect(accuracy).toBeGreaterThan(0.6)
    expect(accuracy).toBeLessThan(1)
  })

  it('rejects with the reason when the signal is already aborted', async () => {
    const reason = new Error('stop')
    await expect(policy.classify('parcel', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
  })
})

describe('parseLabel', () => {
  it.each([
    ['billing', 'billing'],
    ['  Shipping.', 'shipping'],
    ['The queue is: technical', 'technical'],
    ['account or billing', 'account'],
    ['I do not know', null],
    ['accountant', null],
  ] as const)('%j → %s', (answer, label) => {
    expect(parseLabel(answer)).toBe(label)
  })
})

// The chat policy talks to a tiny fake OpenAI-compatible server on 127.0.0.1 started by the test
// (a legitimate local peer standing in for an inference endpoint). No real endpoint is called.
describe('chatPolicy against a local fake chat server', () => {
  it('posts an OpenAI chat request and parses the label from the answer', async () => {
    await using server = await startFakeChatServer(() => chatReply('Shipping'))
    const policy = chatPolicy({ inferenceUrl: `${server.url}/`, model: 'tiny-model', apiKey: 'sk-test-123' })
    expect(policy.name).toBe('chat:tiny-model')
    expect(await policy.classify('Where is my parcel?')).toEqual({ label: 'shipping', raw: 'Shipping' })
    expect(server.requests).toHaveLength(1)
    const [request] = server.requests
    expect(request!.path).toBe('/v1/chat/completions')
    expect(request!.headers.authorization).toBe('Bearer sk-test-123')
    expect(request!.body.model).toBe('tiny-model')
    expect(request!.body.temperature).toBe(0)
    expect(request!.body.messages).toEqual([
      { role: 'system', content: CHAT_SYSTEM_PROMPT },
      { role: 'user', content: 'Where is my parcel?' },
    ])
  })

  it('sends no Authorization header without a key, and a label-less answer predicts null', async () => {
    await using server = await startFakeChatServer(() => chatReply('no idea'))
    expect(await chatPolicy({ inferenceUrl: server.url }).classify('hm')).toEqual({
      label: null,
      raw: 'no idea',
    })
    expect(server.requests[0]!.headers.authorization).toBeUndefined()
    expect(server.requests[0]!.body.model).toBe('gpt-4o-mini')
  })

  it.each([
    {
      name: 'HTTP 500',
      reply: { status: 500, body: { error: 'boom' } },
      code: 'TASKAPP_ERR_EXAMPLE_POLICY_HTTP',
    },
    {
      name: 'HTTP 401',
      reply: { status: 401, body: { error: 'bad key' } },
      code: 'TASKAPP_ERR_EXAMPLE_POLICY_HTTP',
    },
    { name: 'not JSON', reply: { status: 200, body: 'hello' }, code: 'TASKAPP_ERR_EXAMPLE_POLICY_RESPONSE' },
    {
      name: 'no choices',
      reply: { status: 200, body: { choices: [] } },
      code: 'TASKAPP_ERR_EXAMPLE_POLICY_RESPONSE',
    },
  ])('$name → $code', async ({ reply, code }) => {
    await using server = await startFakeChatServer(() => reply)
    expect(await codeOf(chatPolicy({ inferenceUrl: server.url }).classify('x'))).toBe(code)
  })

  it('an unreachable endpoint → TASKAPP_ERR_EXAMPLE_POLICY_HTTP', async () => {
    const server = await startFakeChatServer(() => chatReply('billing'))
    const url = server.url
    await server.close() // nothing listens on that port any more
    expect(await codeOf(chatPolicy({ inferenceUrl: url }).classify('x'))).toBe(
      'TASKAPP_ERR_EXAMPLE_POLICY_HTTP',
    )
  })

  it('rejects with the signal reason when aborted', async () => {
    await using server = await startFakeChatServer(() => chatReply('billing'))
    const reason = new Error('rollout cancelled')
    await expect(
      chatPolicy({ inferenceUrl: server.url }).classify('x', { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason)
  })

  it.each(['not a url', 'ftp://127.0.0.1/v1'])(
    'a bad inference_url %j → TASKAPP_ERR_EXAMPLE_POLICY_CONFIG',
    (inferenceUrl) => {
      expect(() => chatPolicy({ inferenceUrl })).toThrow(
        expect.objectContaining({ code: 'TASKAPP_ERR_EXAMPLE_POLICY_CONFIG' }),
      )
    },
  )
})

describe('selectPolicy', () => {
  it.each([
    { spec: undefined, name: 'keyword-baseline' },
    { spec: { policy_name: 'baseline' }, name: 'keyword-baseline' },
    {
      spec: { policy_name: 'baseline', config: { inference_url: 'http://127.0.0.1:1/v1' } },
      name: 'keyword-baseline',
    },
    {
      spec: { policy_name: 'anything-goes-to-chat', config: {} },
      error: 'TASKAPP_ERR_EXAMPLE_UNKNOWN_POLICY',
    },
    { spec: { policy_name: 'chat' }, error: 'TASKAPP_ERR_EXAMPLE_POLICY_CONFIG' },
    { spec: { config: { inference_url: 42 } }, error: 'TASKAPP_ERR_EXAMPLE_POLICY_CONFIG' },
    { spec: { config: { inference_url: 'http://127.0.0.1:1/v1', model: 'm' } }, name: 'chat:m' },
    {
      spec: { policy_name: 'chat', config: { inference_url: 'http://127.0.0.1:1/v1' } },
      name: 'chat:gpt-4o-mini',
    },
  ])('$spec → $name$error', ({ spec, name, error }) => {
    if (error !== undefined) {
      expect(() => selectPolicy(spec)).toThrow(expect.objectContaining({ code: error }))
    } else {
      expect(selectPolicy(spec).name).toBe(name)
    }
  })

  it('sends the server-side chat key only when the request carries none', async () => {
    await using server = await startFakeChatServer(() => chatReply('billing'))
    await selectPolicy({ config: { inference_url: server.url } }, { chatApiKey: 'server-key' }).classify('x')
    await selectPolicy(
      { config: { inference_url: server.url, api_key: 'request-key' } },
      { chatApiKey: 'server-key' },
    ).classify('x')
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([
      'Bearer server-key',
      'Bearer request-key',
    ])
  })
})
