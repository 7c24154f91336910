/** `POST /done`: the optimizer's "finished with this task app" call; answered, nothing else happens. */
import type { RequestHandler, Router } from 'express'
import { routerOf } from './route-table'

/** The router for `/done`. */
export function doneRoutes(appId: string, auth: RequestHandler): Router {
  return routerOf((add) => {
    add('post', '/done', auth, (_req, res) => {
      res.json({ ok: true, service: appId })
    })
  })
}
