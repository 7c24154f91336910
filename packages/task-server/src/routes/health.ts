/** `GET`/`HEAD /` (liveness, no key) and `GET /health` (key, then readiness). */
import type { RequestHandler, Router } from 'express'
import { keyPrefix, type KeySource } from '../auth'
import type { TaskServerState } from '../lifecycle'
import { routerOf } from './route-table'

/** What the health routes read. */
export interface HealthRoutesOptions {
  appId: string
  keys: KeySource
  requireKey: boolean
  auth: RequestHandler
  /**
   * True when `/health` is open (container tokens configured): then `auth.expected_prefix` is
   * `'<hidden>'`, since anyone can read the answer.
   */
  open: boolean
  state: () => TaskServerState
}

/** The router for `/` and `/health`. */
export function healthRoutes(options: HealthRoutesOptions): Router {
  const { appId, keys, requireKey, auth, open, state } = options
  return routerOf((add) => {
    add('head', '/', (_req, res) => {
      res.status(200).json({ status: 'ok' })
    })
    add('get', '/', (_req, res) => {
      res.json({ status: 'ok', service: appId })
    })
    add('get', '/health', auth, (_req, res) => {
      const authInfo = {
        required: requireKey,
        expected_prefix: open ? '<hidden>' : keyPrefix(keys.current().keys[0]),
      }
      const now = state()
      if (now === 'ready') {
        res.json({ healthy: true, auth: authInfo })
        return
      }
      const status = now === 'starting' ? 'starting' : now === 'failed' ? 'startup_failed' : 'shutting_down'
      res.status(503).json({ healthy: false, status, auth: authInfo })
    })
  })
}
