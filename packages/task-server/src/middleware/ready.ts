/** Gates on the app's lifecycle: no work while closing, and none before the startup hooks are done. */
import type { RequestHandler } from 'express'
import { sendError } from '../http-errors'
import type { TaskServerState } from '../lifecycle'

/** Refuses every request but `/` and `/health` with 503 `shutting_down` once close() has begun. */
export function refuseWhileClosing(state: () => TaskServerState): RequestHandler {
  return (req, res, next) => {
    const now = state()
    if ((now === 'closing' || now === 'closed') && req.path !== '/health' && req.path !== '/') {
      res.setHeader('Connection', 'close')
      sendError(res, 503, 'shutting_down', 'The task app is shutting down; retry against a new instance.')
      return
    }
    next()
  }
}

/** Lets the request on once the startup hooks are done; 503 `not_ready` / `startup_failed` before. */
export function requireReady(state: () => TaskServerState): RequestHandler {
  return (_req, res, next) => {
    const now = state()
    if (now === 'ready') {
      next()
      return
    }
    res.setHeader('Retry-After', '1')
    if (now === 'failed') sendError(res, 503, 'startup_failed', 'A startup hook failed; see the server log.')
    else sendError(res, 503, 'not_ready', 'The task app is still starting; retry in a moment.')
  }
}
