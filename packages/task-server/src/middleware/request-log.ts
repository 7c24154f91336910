/** One DEBUG line per request once its answer is over: method, path, status, duration, request id. */
import type { RequestHandler } from 'express'
import { levelEnabled, safeLog, type TaskAppLogger } from '../logger'

/** Status logged for a request whose caller went away before the answer was complete (nginx's). */
const CLIENT_CLOSED = 499

/**
 * Logs `task-server: request` at DEBUG when the response closes: `{ method, path, status, ms,
 * requestId }`. The path has no query string (nothing a caller put there reaches the log). With
 * DEBUG off (the logger's `isLevelEnabled('debug')` is false) it costs one level check.
 */
export function requestLog(logger: TaskAppLogger): RequestHandler {
  return (req, res, next) => {
    if (!levelEnabled(logger, 'debug')) return next()
    const started = performance.now()
    res.once('close', () => {
      const url = req.originalUrl
      const q = url.indexOf('?')
      safeLog(
        logger,
        'debug',
        {
          method: req.method,
          path: q === -1 ? url : url.slice(0, q),
          status: res.writableFinished ? res.statusCode : CLIENT_CLOSED,
          ms: Math.round((performance.now() - started) * 10) / 10,
          requestId: res.locals.requestId as string,
        },
        'task-server: request',
      )
    })
    next()
  }
}
