/**
 * Optional OpenAI-compatible pass-through: `POST /proxy/v1/chat/completions` forwards the JSON
 * body to the vendor with the server's own key, so the optimizer never needs it.
 */
import type { Request, Response } from 'express'
import { sendError } from './http-errors'
import { safeLog, type TaskAppLogger } from './logger'

/** Options of the chat-completions pass-through. */
export interface ProxyConfig {
  /**
   * Serve `POST /proxy/v1/chat/completions`.
   * @default true (when `proxy` is given)
   */
  enableOpenai?: boolean
  /**
   * Where requests go.
   * @default 'https://api.openai.com/v1/chat/completions'
   */
  openaiUrl?: string
  /**
   * Key sent as `Authorization: Bearer`.
   * @default process.env.OPENAI_API_KEY, read at request time
   */
  apiKey?: string
  /** Text added to the system message (or sent as one) of every request. */
  systemHint?: string
  /**
   * Deadline of one vendor call, in milliseconds.
   * @default 600000
   */
  timeoutMs?: number
}

const DEFAULT_OPENAI_URL = 'https://api.openai.com/v1/chat/completions'

function withSystemHint(body: Record<string, unknown>, hint: string | undefined): Record<string, unknown> {
  if (!hint || !Array.isArray(body.messages)) return body
  const messages = [...(body.messages as unknown[])]
  const first = messages[0] as { role?: unknown; content?: unknown } | undefined
  if (first?.role === 'system' && typeof first.content === 'string') {
    if (!first.content.includes(hint)) messages[0] = { ...first, content: `${first.content}\n\n${hint}` }
  } else {
    messages.unshift({ role: 'system', content: hint })
  }
  return { ...body, messages }
}

/** The Express handler of the pass-through (auth and JSON parsing run before it). */
export function createProxyHandler(config: ProxyConfig, logger: TaskAppLogger) {
  const url = config.openaiUrl ?? DEFAULT_OPENAI_URL
  const vendorCode = url.startsWith('https://api.openai.com') ? 'openai_error' : 'vendor_error'
  const timeoutMs = config.timeoutMs ?? 600_000
  return async (req: Request, res: Response): Promise<void> => {
    const key = config.apiKey ?? process.env.OPENAI_API_KEY
    if (!key) {
      sendError(
        res,
        503,
        'missing_openai_api_key',
        'The proxy has no vendor key; set OPENAI_API_KEY or proxy.apiKey.',
      )
      return
    }
    const body = req.body as unknown
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      sendError(
        res,
        422,
        'invalid_request',
        'The body must be a JSON object (an OpenAI chat-completions request).',
        {
          issues: [{ path: '', message: 'expected object' }],
        },
      )
      return
    }
    const payload = withSystemHint(body as Record<string, unknown>, config.systemHint)
    const disconnect = new AbortController()
    const onClose = () => {
      if (!res.writableFinished) disconnect.abort(new Error('client disconnected'))
    }
    res.once('close', onClose)
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify(payload),
        signal: AbortSignal.any([disconnect.signal, AbortSignal.timeout(timeoutMs)]),
      })
      const text = await response.text()
      let data: unknown
      if ((response.headers.get('content-type') ?? '').includes('json')) {
        try {
          data = JSON.parse(text)
        } catch {
          data = { raw: text }
        }
      } else {
        data = { raw: text }
      }
      if (response.status >= 400) {
        sendError(res, response.status, vendorCode, 'Vendor proxy error', {
          status: response.status,
          body: data,
        })
        return
      }
      res.status(200).json(data)
    } catch (err) {
      if (disconnect.signal.aborted) return
      safeLog(logger, 'warn', { err, url }, 'proxy: vendor call failed')
      sendError(
        res,
        502,
        'vendor_unreachable',
        'The vendor could not be reached or did not answer in time; try again.',
      )
    } finally {
      res.off('close', onClose)
    }
  }
}
