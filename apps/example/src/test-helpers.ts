/**
 * Test helpers of the example (not a test file, so it may hold timers and servers): a tiny fake
 * OpenAI-compatible chat server on 127.0.0.1, a legitimate local peer that stands in for a real
 * inference endpoint, which the tests never call, and a task app served on 127.0.0.1:0.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { listenLoopback } from '@taskapp/test-utils'

/** One request the fake server received. */
export interface RecordedChatRequest {
  path: string
  headers: IncomingMessage['headers']
  body: { model?: string; messages?: { role: string; content: string }[]; temperature?: number }
}

/** A running fake chat server. */
export interface FakeChatServer extends AsyncDisposable {
  /** Base URL to give as `inference_url`, e.g. `http://127.0.0.1:41234/v1`. */
  readonly url: string
  readonly requests: RecordedChatRequest[]
  close(): Promise<void>
}

/** How the fake answers one request: a status and a JSON (or raw string) body. */
export type FakeChatReply = (request: RecordedChatRequest) => { status: number; body: unknown }

/** Answers like OpenAI with `content` as the assistant message. */
export function chatReply(content: string): { status: number; body: unknown } {
  return {
    status: 200,
    body: {
      id: 'chatcmpl-fake',
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    },
  }
}

/**
 * Starts the fake on 127.0.0.1:0. `reply` decides each answer; it defaults to echoing back the
 * first label word found in the user's message (so the fake "model" is perfect on clear tickets).
 */
export async function startFakeChatServer(reply: FakeChatReply): Promise<FakeChatServer> {
  const requests: RecordedChatRequest[] = []
  const server = await listenLoopback((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      let body: RecordedChatRequest['body']
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RecordedChatRequest['body']
      } catch {
        body = {}
      }
      const recorded: RecordedChatRequest = { path: req.url ?? '', headers: req.headers, body }
      requests.push(recorded)
      const answer = reply(recorded)
      const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body)
      res.writeHead(answer.status, { 'content-type': 'application/json' })
      res.end(text)
    })
  })
  return { url: `${server.url}/v1`, requests, close: server.close, [Symbol.asyncDispose]: server.close }
}

/** A task app served on 127.0.0.1:0 for a test. */
export interface ServedApp extends AsyncDisposable {
  readonly url: string
  close(): Promise<void>
}

/**
 * Serves a request listener (e.g. `createTaskApp(config)`) on 127.0.0.1:0 after its lifecycle
 * is ready; `close()` closes the app's lifecycle, then the server.
 */
export async function serveApp(app: {
  (req: IncomingMessage, res: ServerResponse): void
  lifecycle?: { ready(): Promise<void>; close(): Promise<void> }
}): Promise<ServedApp> {
  await app.lifecycle?.ready()
  const server = await listenLoopback(app)
  const close = async (): Promise<void> => {
    await app.lifecycle?.close()
    await server.close()
  }
  return { url: server.url, close, [Symbol.asyncDispose]: close }
}
