/**
 * The upstream OpenAI-compatible endpoint: where the interceptor forwards the task app's chat
 * calls and where the optimizer asks for reflections.
 */

/** The upstream model endpoint, as `createLocalBackend` takes it. */
export interface UpstreamOptions {
  /**
   * OpenAI-style base URL: calls go to `${baseUrl}/chat/completions` (e.g.
   * `https://api.openai.com/v1`, `http://127.0.0.1:11434/v1`, or a deterministic model's `url`).
   */
  baseUrl: string
  /**
   * Sent as `Authorization: Bearer <apiKey>` on every upstream call; never logged, never sent to
   * the task app. Read it from an env variable.
   * @default undefined (no Authorization header)
   */
  apiKey?: string
  /**
   * Model name forced on every forwarded call and on reflections.
   * @default undefined (forwarded calls keep the task app's `model`; reflections use the job's `policy.model`)
   */
  model?: string
  /**
   * Deadline of one upstream call, in milliseconds.
   * @default 120000
   */
  timeoutMs?: number
}

/** An upstream chat reply, read whole. */
export interface UpstreamReply {
  readonly status: number
  readonly contentType: string
  readonly text: string
}

/** The failure to reach the upstream endpoint (network, deadline): the message says which. */
export class UpstreamUnreachable extends Error {
  override readonly name = 'UpstreamUnreachable'
}

/**
 * Posts a chat completion body upstream and returns the reply (any status). Rejects with
 * `signal.reason` when `signal` aborts, with {@link UpstreamUnreachable} when the endpoint cannot be
 * reached in time.
 */
export async function postChat(
  upstream: UpstreamOptions,
  body: Record<string, unknown>,
  signal: AbortSignal,
): Promise<Response> {
  const endpoint = `${upstream.baseUrl}/chat/completions`
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' }
  if (upstream.apiKey !== undefined) headers.authorization = `Bearer ${upstream.apiKey}`
  const payload = upstream.model === undefined ? body : { ...body, model: upstream.model }
  try {
    return await fetch(endpoint, {
      method: 'POST',
      headers,
      body: JSON.stringify(payload),
      signal: AbortSignal.any([signal, AbortSignal.timeout(upstream.timeoutMs ?? 120_000)]),
    })
  } catch (cause) {
    if (signal.aborted) throw signal.reason
    const why =
      cause instanceof Error && cause.name === 'TimeoutError'
        ? 'did not answer in time'
        : 'could not be reached'
    throw new UpstreamUnreachable(`The upstream model ${endpoint} ${why}.`, { cause })
  }
}

/** `choices[0].message.content` (or its tool calls as JSON) of a chat reply, if any. */
export function replyContent(json: unknown): string | undefined {
  const message = (json as { choices?: { message?: { content?: unknown; tool_calls?: unknown } }[] } | null)
    ?.choices?.[0]?.message
  if (typeof message?.content === 'string') return message.content
  if (Array.isArray(message?.tool_calls)) return JSON.stringify(message.tool_calls)
  return undefined
}

/** The `usage` numbers of a chat reply (zeros when absent). */
export function replyUsage(json: unknown): { prompt: number; completion: number; total: number } {
  const usage = (json as { usage?: Record<string, unknown> } | null)?.usage ?? {}
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0)
  const prompt = num(usage.prompt_tokens)
  const completion = num(usage.completion_tokens)
  return { prompt, completion, total: num(usage.total_tokens) || prompt + completion }
}
