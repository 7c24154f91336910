/**
 * A deterministic OpenAI-compatible model server for tests and the offline demo: it answers a task
 * by applying the rules written in its system prompt, and a reflection request by returning the
 * prompt plus one rule drawn from the failed examples. A better prompt really scores better, and
 * an optimizer finds it through the same calls a real model would get.
 */
import { timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { safeLog, silentLogger, type Logger } from '@taskapp/core'
import { JobsError } from '../errors'
import {
  closeServer,
  HttpError,
  isObject,
  listen,
  originOf,
  readJson,
  sendError,
  sendJson,
} from '../backend/http'
import { answerChat, contentText, type ChatMessage } from './answer'

/** Options of {@link createDeterministicModel}. */
export interface DeterministicModelOptions {
  /**
   * Port to listen on; 0 picks a free one.
   * @default 0
   */
  port?: number
  /**
   * Host to listen on.
   * @default '127.0.0.1'
   */
  host?: string
  /**
   * Key the model requires as `Authorization: Bearer <key>` (401 otherwise), to stand in for a
   * hosted endpoint.
   * @default undefined (no key needed)
   */
  apiKey?: string
  /**
   * Called with every chat request the model answers (its messages, text only, and what kind it
   * was), to observe what an optimizer really sent. When it returns a promise, the answer waits
   * for it (a test can hold the model, and so the job, at a gate it opens later).
   * @default undefined
   */
  onRequest?: (request: DeterministicModelRequest) => unknown
  /** @default a silent logger */
  logger?: Logger
  /** Aborting it closes the server. */
  signal?: AbortSignal
}

/** One request the model answered, as {@link DeterministicModelOptions.onRequest} sees it. */
export interface DeterministicModelRequest {
  readonly kind: 'task' | 'reflection'
  readonly model: string
  readonly messages: readonly ChatMessage[]
  /** What the model answered. */
  readonly answer: string
}

/** Counts of the requests the model answered. */
export interface DeterministicModelStats {
  /** Task requests (answered from the rules). */
  task: number
  /** Reflection requests (answered with an improved prompt). */
  reflection: number
}

/** A running deterministic model. */
export interface DeterministicModel extends AsyncDisposable {
  /** OpenAI-style base URL, ending in `/v1`: post to `${url}/chat/completions`. */
  readonly url: string
  /** Requests answered so far. */
  readonly stats: Readonly<DeterministicModelStats>
  /** Stops the server (open connections are dropped). Safe to call twice. */
  close(): Promise<void>
}

function badOption(message: string): JobsError {
  return new JobsError('TASKAPP_ERR_JOBS_INVALID_CONFIG', `createDeterministicModel: ${message}`)
}

function checkOptions(options: DeterministicModelOptions): void {
  if (typeof options !== 'object' || options === null) throw badOption('options must be an object.')
  const { port, host, apiKey, signal } = options
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65_535)) {
    throw badOption('"port" must be an integer from 0 to 65535.')
  }
  if (host !== undefined && (typeof host !== 'string' || host === '')) {
    throw badOption('"host" must be a non-empty string.')
  }
  if (apiKey !== undefined && (typeof apiKey !== 'string' || apiKey === '')) {
    throw badOption('"apiKey" must be a non-empty string.')
  }
  if (options.onRequest !== undefined && typeof options.onRequest !== 'function') {
    throw badOption('"onRequest" must be a function.')
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw badOption('"signal" must be an AbortSignal.')
  }
}

function keyMatches(header: string | undefined, apiKey: string): boolean {
  const presented = Buffer.from(/^bearer\s+(.+)$/i.exec(header ?? '')?.[1]?.trim() ?? '')
  const expected = Buffer.from(apiKey)
  return presented.length === expected.length && timingSafeEqual(presented, expected)
}

function messagesOf(body: unknown): ChatMessage[] {
  const messages = isObject(body) ? body.messages : undefined
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new HttpError(400, 'invalid_request_error', '"messages" must be a non-empty array.')
  }
  return messages.map((m: unknown) => ({
    role: isObject(m) && typeof m.role === 'string' ? m.role : 'user',
    content: isObject(m) ? contentText(m.content) : '',
  }))
}

function tokens(text: string): number {
  return text.split(/\s+/).filter((w) => w !== '').length
}

function completion(model: string, content: string, messages: readonly ChatMessage[], n: number): unknown {
  const promptTokens = messages.reduce((sum, m) => sum + tokens(m.content), 0)
  const completionTokens = tokens(content)
  return {
    id: `chatcmpl-det-${n}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    },
  }
}

/**
 * Starts the deterministic model: `POST /v1/chat/completions` (OpenAI-compatible, non-streaming)
 * and `GET /v1/models`.
 *
 * @throws {@link JobsError} `TASKAPP_ERR_JOBS_INVALID_CONFIG` for bad options,
 * `TASKAPP_ERR_JOBS_LISTEN_FAILED` when it cannot listen (the promise rejects).
 *
 * @example
 * ```ts
 * await using model = await createDeterministicModel()
 * const res = await fetch(`${model.url}/chat/completions`, {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/json' },
 *   body: JSON.stringify({ model: 'det', messages: [
 *     { role: 'system', content: 'If the ticket mentions "parcel", answer "shipping". Otherwise answer "billing".' },
 *     { role: 'user', content: 'Where is my parcel?' },
 *   ] }),
 * })
 * // choices[0].message.content === 'shipping'
 * ```
 */
export async function createDeterministicModel(
  options: DeterministicModelOptions = {},
): Promise<DeterministicModel> {
  checkOptions(options)
  const { port = 0, host = '127.0.0.1', apiKey, onRequest, logger = silentLogger, signal } = options
  signal?.throwIfAborted()
  const stats: DeterministicModelStats = { task: 0, reflection: 0 }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://model').pathname.replace(/\/+$/, '')
    if (apiKey !== undefined && !keyMatches(req.headers.authorization, apiKey)) {
      throw new HttpError(401, 'invalid_api_key', 'Send the model key as Authorization: Bearer <key>.')
    }
    if (req.method === 'GET' && path === '/v1/models') {
      sendJson(res, 200, {
        object: 'list',
        data: [{ id: 'deterministic', object: 'model', owned_by: 'taskapp' }],
      })
      return
    }
    if (req.method !== 'POST' || path !== '/v1/chat/completions') {
      throw new HttpError(
        404,
        'not_found',
        `No route ${req.method ?? ''} ${path}; use POST /v1/chat/completions.`,
      )
    }
    const body = await readJson(req)
    if (isObject(body) && body.stream === true) {
      throw new HttpError(
        400,
        'invalid_request_error',
        'The deterministic model does not stream; send "stream": false.',
      )
    }
    const messages = messagesOf(body)
    const answer = answerChat(messages)
    stats[answer.kind] += 1
    const model = isObject(body) && typeof body.model === 'string' ? body.model : 'deterministic'
    await onRequest?.({ kind: answer.kind, model, messages, answer: answer.content })
    sendJson(res, 200, completion(model, answer.content, messages, stats.task + stats.reflection))
  }
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!(error instanceof HttpError))
        safeLog(logger, 'error', { err: error }, 'deterministic model failed')
      sendError(res, error)
    })
  })
  const bound = await listen(server, port, host, 'The deterministic model')
  let closing: Promise<void> | undefined
  const onAbort = (): void => void close()
  const close = (): Promise<void> => {
    signal?.removeEventListener('abort', onAbort)
    return (closing ??= closeServer(server))
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  return { url: `${originOf(host, bound)}/v1`, stats, close, [Symbol.asyncDispose]: close }
}
