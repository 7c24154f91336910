/**
 * The policies a rollout can run: a deterministic keyword baseline (no network, no account) and
 * a policy that asks any OpenAI-compatible chat endpoint (`POST {inferenceUrl}/chat/completions`).
 */
import { LABELS, type Label } from './dataset'
import { ExampleError } from './errors'

/** What a policy answers for one ticket. */
export interface Prediction {
  /** The predicted queue, or `null` when the answer names none of the labels (scores 0). */
  readonly label: Label | null
  /** The policy's raw answer (the model's text, or the rule that fired). */
  readonly raw: string
}

/** A policy classifies one ticket text. */
export interface Policy {
  /** Name reported in the rollout details, e.g. `keyword-baseline` or `chat:gpt-4o-mini`. */
  readonly name: string
  classify(text: string, options?: { signal?: AbortSignal }): Promise<Prediction>
}

/** Keyword rules of the baseline: a ticket gets the label whose words it contains most. */
export const DEFAULT_KEYWORD_RULES: Readonly<Record<Label, readonly string[]>> = {
  billing: [
    'charge',
    'charged',
    'invoice',
    'payment',
    'paid',
    'card',
    'subscription',
    'bill',
    'billing',
    'price',
    'tax',
    'refund',
  ],
  shipping: [
    'package',
    'parcel',
    'delivery',
    'delivered',
    'courier',
    'tracking',
    'shipped',
    'ships',
    'arrive',
    'arrived',
    'address',
    'driver',
  ],
  technical: [
    'app',
    'crash',
    'crashes',
    'error',
    'bug',
    'slow',
    'loading',
    'freezes',
    'screen',
    'update',
    'website',
    'button',
    'notifications',
  ],
  account: [
    'account',
    'password',
    'email',
    'username',
    'sign',
    'login',
    'profile',
    'hacked',
    'two-factor',
    'accounts',
    'delete',
  ],
  feedback: [
    'love',
    'great',
    'thank',
    'thanks',
    'suggest',
    'request',
    'nice',
    'excellent',
    'design',
    'stars',
  ],
}

/** The label the baseline answers when no keyword matches. */
export const BASELINE_FALLBACK_LABEL: Label = 'feedback'

function words(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9]+(?:-[a-z0-9]+)*/g) ?? []
}

/**
 * The deterministic baseline: counts keyword hits per label and answers the label with the
 * most; ties go to the label listed first in {@link LABELS}; no hit answers
 * {@link BASELINE_FALLBACK_LABEL}. Same text, same answer, always.
 *
 * @example
 * await keywordPolicy().classify('My parcel never arrived') // { label: 'shipping', ... }
 */
export function keywordPolicy(
  rules: Readonly<Record<Label, readonly string[]>> = DEFAULT_KEYWORD_RULES,
): Policy {
  const lookup = new Map<string, Label[]>()
  for (const label of LABELS) {
    for (const word of rules[label]) {
      const key = word.toLowerCase()
      lookup.set(key, [...(lookup.get(key) ?? []), label])
    }
  }
  return {
    name: 'keyword-baseline',
    async classify(text, options) {
      options?.signal?.throwIfAborted()
      const hits = new Map<Label, string[]>()
      for (const word of words(text)) {
        for (const label of lookup.get(word) ?? []) hits.set(label, [...(hits.get(label) ?? []), word])
      }
      let best: Label | undefined
      for (const label of LABELS) {
        if ((hits.get(label)?.length ?? 0) > (best === undefined ? 0 : (hits.get(best)?.length ?? 0)))
          best = label
      }
      if (best === undefined) return { label: BASELINE_FALLBACK_LABEL, raw: 'no keyword matched' }
      return { label: best, raw: `keywords: ${(hits.get(best) ?? []).join(', ')}` }
    },
  }
}

/** Options of {@link chatPolicy}. */
export interface ChatPolicyOptions {
  /** Base URL of an OpenAI-compatible API; the policy posts to `${inferenceUrl}/chat/completions`. */
  inferenceUrl: string
  /** Model name sent in the request. @default 'gpt-4o-mini' */
  model?: string
  /** Sent as `Authorization: Bearer <apiKey>` when given; never logged. @default undefined */
  apiKey?: string
  /** Sampling temperature. @default 0 */
  temperature?: number
  /** Deadline of one call. @default 30_000 */
  timeoutMs?: number
  /** The fetch to use (tests may inject one). @default globalThis.fetch */
  fetch?: typeof globalThis.fetch
}

/** The system prompt of {@link chatPolicy}. */
export const CHAT_SYSTEM_PROMPT = `You route customer-support tickets to a queue. Answer with exactly one word, one of: ${LABELS.join(', ')}.`

/**
 * Finds the label a free-text answer names: the one that appears first as a whole word, or
 * `null` when it names none.
 */
export function parseLabel(answer: string): Label | null {
  let found: { label: Label; at: number } | undefined
  for (const label of LABELS) {
    const at = answer.toLowerCase().search(new RegExp(`\\b${label}\\b`))
    if (at >= 0 && (found === undefined || at < found.at)) found = { label, at }
  }
  return found?.label ?? null
}

interface ChatCompletion {
  choices?: { message?: { content?: unknown } }[]
}

/** Checks that `inferenceUrl` is an absolute http(s) URL, else throws `..._POLICY_CONFIG`. */
function checkInferenceUrl(inferenceUrl: string): void {
  let base: URL
  try {
    base = new URL(inferenceUrl)
  } catch (cause) {
    throw new ExampleError(
      'TASKAPP_ERR_EXAMPLE_POLICY_CONFIG',
      `policy.config.inference_url must be an absolute http(s) URL, got "${inferenceUrl}".`,
      { cause },
    )
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new ExampleError(
      'TASKAPP_ERR_EXAMPLE_POLICY_CONFIG',
      `policy.config.inference_url must use http or https, got "${base.protocol}".`,
    )
  }
}

/** The request headers of a chat call (`authorization` only with a key). */
function chatHeaders(apiKey: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json',
  }
  if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`
  return headers
}

/** The JSON body of a chat call classifying `text`. */
function chatBody(model: string, temperature: number, text: string): string {
  return JSON.stringify({
    model,
    temperature,
    max_tokens: 8,
    messages: [
      { role: 'system', content: CHAT_SYSTEM_PROMPT },
      { role: 'user', content: text },
    ],
  })
}

/** Reads `choices[0].message.content` of a chat answer, else throws `..._POLICY_HTTP` / `..._POLICY_RESPONSE`. */
async function chatContent(response: Response, endpoint: string): Promise<string> {
  if (!response.ok) {
    const body = (await response.text().catch(() => '')).slice(0, 200)
    throw new ExampleError(
      'TASKAPP_ERR_EXAMPLE_POLICY_HTTP',
      `The chat endpoint ${endpoint} answered HTTP ${response.status}${body ? `: ${body}` : ''}; check the model name and key.`,
    )
  }
  let json: ChatCompletion
  try {
    json = (await response.json()) as ChatCompletion
  } catch (cause) {
    throw new ExampleError(
      'TASKAPP_ERR_EXAMPLE_POLICY_RESPONSE',
      `The chat endpoint ${endpoint} answered something that is not JSON.`,
      {
        cause,
      },
    )
  }
  const content = json.choices?.[0]?.message?.content
  if (typeof content !== 'string') {
    throw new ExampleError(
      'TASKAPP_ERR_EXAMPLE_POLICY_RESPONSE',
      `The chat endpoint ${endpoint} answered without choices[0].message.content; is it OpenAI-compatible?`,
    )
  }
  return content
}

/**
 * A policy that asks an OpenAI-compatible chat endpoint. An HTTP error or a malformed answer
 * rejects with an {@link ExampleError} (`..._POLICY_HTTP`, `..._POLICY_RESPONSE`): an inference
 * failure is not a wrong answer and is not scored as one.
 *
 * @example
 * const policy = chatPolicy({ inferenceUrl: 'http://127.0.0.1:8000/v1', model: 'qwen2.5' })
 * await policy.classify('My parcel never arrived')
 */
export function chatPolicy(options: ChatPolicyOptions): Policy {
  checkInferenceUrl(options.inferenceUrl)
  const endpoint = `${options.inferenceUrl.replace(/\/+$/, '')}/chat/completions`
  const model = options.model ?? 'gpt-4o-mini'
  const doFetch = options.fetch ?? globalThis.fetch
  return {
    name: `chat:${model}`,
    async classify(text, callOptions) {
      const signal = AbortSignal.any([
        ...(callOptions?.signal ? [callOptions.signal] : []),
        AbortSignal.timeout(options.timeoutMs ?? 30_000),
      ])
      let response: Response
      try {
        response = await doFetch(endpoint, {
          method: 'POST',
          headers: chatHeaders(options.apiKey),
          signal,
          body: chatBody(model, options.temperature ?? 0, text),
        })
      } catch (cause) {
        if (callOptions?.signal?.aborted) throw callOptions.signal.reason
        throw new ExampleError(
          'TASKAPP_ERR_EXAMPLE_POLICY_HTTP',
          `The chat endpoint ${endpoint} could not be reached; check inference_url.`,
          {
            cause,
          },
        )
      }
      const content = await chatContent(response, endpoint)
      return { label: parseLabel(content), raw: content }
    },
  }
}

/** The `policy` part of a rollout request, as far as the example reads it. */
export interface PolicySpec {
  policy_name?: string | null
  config?: Record<string, unknown> | null
}

/** Server-side options for picking a policy. */
export interface PolicySelectOptions {
  /** Key sent to the chat endpoint when the request carries no `policy.config.api_key`. @default undefined */
  chatApiKey?: string
  /** Fetch for the chat policy. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch
}

const BASELINE_NAMES = new Set(['baseline', 'keyword-baseline', 'keyword'])
const CHAT_NAMES = new Set(['chat', 'openai', 'llm'])

/**
 * Picks the policy a rollout request names:
 * - `policy.config.inference_url` given (and the name is not a baseline name) → {@link chatPolicy}
 *   with `policy.config.model` / `api_key` / `temperature`;
 * - otherwise → the {@link keywordPolicy} baseline.
 *
 * A name that is neither a baseline nor a chat name, or `chat` without an `inference_url`,
 * throws `TASKAPP_ERR_EXAMPLE_UNKNOWN_POLICY` / `TASKAPP_ERR_EXAMPLE_POLICY_CONFIG`.
 *
 * @example
 * selectPolicy({ policy_name: 'baseline' }).name // 'keyword-baseline'
 */
export function selectPolicy(spec: PolicySpec | undefined, options: PolicySelectOptions = {}): Policy {
  const name = (spec?.policy_name ?? '').trim().toLowerCase()
  const config = spec?.config ?? {}
  const inferenceUrl = config.inference_url
  if (name !== '' && !BASELINE_NAMES.has(name) && !CHAT_NAMES.has(name)) {
    throw new ExampleError(
      'TASKAPP_ERR_EXAMPLE_UNKNOWN_POLICY',
      `Unknown policy "${name}"; use "baseline" (keyword rules) or "chat" (needs policy.config.inference_url).`,
    )
  }
  if (BASELINE_NAMES.has(name)) return keywordPolicy()
  if (inferenceUrl === undefined || inferenceUrl === null || inferenceUrl === '') {
    if (CHAT_NAMES.has(name)) {
      throw new ExampleError(
        'TASKAPP_ERR_EXAMPLE_POLICY_CONFIG',
        `Policy "${name}" needs policy.config.inference_url (an OpenAI-compatible base URL).`,
      )
    }
    return keywordPolicy()
  }
  if (typeof inferenceUrl !== 'string') {
    throw new ExampleError(
      'TASKAPP_ERR_EXAMPLE_POLICY_CONFIG',
      'policy.config.inference_url must be a string.',
    )
  }
  const model = typeof config.model === 'string' ? config.model : undefined
  const apiKey = typeof config.api_key === 'string' ? config.api_key : options.chatApiKey
  const temperature = typeof config.temperature === 'number' ? config.temperature : undefined
  return chatPolicy({
    inferenceUrl,
    ...(model !== undefined && { model }),
    ...(apiKey !== undefined && { apiKey }),
    ...(temperature !== undefined && { temperature }),
    ...(options.fetch !== undefined && { fetch: options.fetch }),
  })
}
