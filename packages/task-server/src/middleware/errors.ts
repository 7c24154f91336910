/** The error answers at the end of the stack: 405, 404, and the error handler that maps what was thrown. */
import { randomUUID } from 'node:crypto'
import type { ErrorRequestHandler, RequestHandler, Response } from 'express'
import { sendError } from '../http-errors'
import { safeLog, type TaskAppLogger } from '../logger'
import { requestIdOf } from './request-id'

/** 405 `method_not_allowed` with this `Allow` header. */
export function methodNotAllowed(allow: string): RequestHandler {
  return (_req, res) => {
    res.setHeader('Allow', allow)
    sendError(res, 405, 'method_not_allowed', `Use ${allow} on this path.`)
  }
}

/** 404 `not_found` for every route nobody answered. */
export const notFound: RequestHandler = (req, res) => {
  sendError(
    res,
    404,
    'not_found',
    `No route ${req.method} ${req.path}; see the task-app contract for the routes.`,
  )
}

/** 500 `internal_error` with an error id; the error itself goes only to the log. */
export function sendInternalError(res: Response, err: unknown, what: string, logger: TaskAppLogger): void {
  const errorId = randomUUID()
  safeLog(logger, 'error', { err, errorId, requestId: requestIdOf(res) }, `task-server: ${what} threw`)
  sendError(res, 500, 'internal_error', `${what} failed; look up error id ${errorId} in the server log.`, {
    error_id: errorId,
  })
}

/** Maps body-parser errors to 413/422/415, other client errors to 422, the rest to 500. */
export function createErrorHandler(logger: TaskAppLogger): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    const e = err as { type?: unknown; status?: unknown; limit?: unknown }
    switch (e?.type) {
      case 'entity.too.large':
        sendError(
          res,
          413,
          'payload_too_large',
          `The request body is larger than the ${String(e.limit)}-byte limit; send a smaller body or raise limits.bodyLimit.`,
          { limit: e.limit },
        )
        return
      case 'entity.parse.failed':
        sendError(res, 422, 'invalid_json', 'The request body is not valid JSON.', {
          issues: [{ path: '', message: 'invalid JSON' }],
        })
        return
      case 'encoding.unsupported':
      case 'charset.unsupported':
        sendError(
          res,
          415,
          'unsupported_encoding',
          'Send the body as UTF-8 JSON, optionally gzip or deflate encoded.',
        )
        return
      case 'request.aborted':
        return
      default:
        if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
          sendError(res, e.status, 'invalid_request', 'The request could not be read.')
          return
        }
        sendInternalError(res, err, 'The request handler', logger)
    }
  }
}
