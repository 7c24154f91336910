/** Runs a list of middleware as one, in order, so a route can be served from a single layer. */
import type { RequestHandler } from 'express'

/**
 * One handler that runs `handlers` in order, each calling `next()` to go on. `next(err)` with a truthy `err`
 * (and `next('route')`) leaves the chain to the caller's `next`; a throw or a rejected promise becomes
 * `next(err)`, as in Express 5.
 */
export function compose(handlers: readonly RequestHandler[]): RequestHandler {
  return (req, res, out) => {
    let index = 0
    const next = (err?: unknown): void => {
      if (err) {
        out(err)
        return
      }
      const handler = handlers[index++]
      if (handler === undefined) {
        out()
        return
      }
      try {
        const result: unknown = handler(req, res, next)
        if (result instanceof Promise) result.catch(out)
      } catch (e) {
        out(e)
      }
    }
    next()
  }
}
