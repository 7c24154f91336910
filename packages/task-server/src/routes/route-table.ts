/**
 * Routers whose 405 answers come from what is registered on them: every path gets a last
 * handler that answers 405 `method_not_allowed` with `Allow` listing the methods of that path.
 */
import express, { type RequestHandler, type Router } from 'express'
import { methodNotAllowed } from '../middleware/errors'

/** The methods the task app serves. */
export type RouteMethod = 'get' | 'head' | 'post' | 'delete'

/** Registers one route (as `router[method](path, ...handlers)`). */
export type AddRoute = (method: RouteMethod, path: string, ...handlers: RequestHandler[]) => void

const ORDER: readonly RouteMethod[] = ['get', 'head', 'post', 'delete']

/** The `Allow` header for these methods, in a fixed order; `GET` implies `HEAD` (Express answers it). */
export function allowHeader(methods: Iterable<RouteMethod>): string {
  const set = new Set(methods)
  if (set.has('get')) set.add('head')
  return ORDER.filter((m) => set.has(m))
    .map((m) => m.toUpperCase())
    .join(', ')
}

/**
 * A Router with the routes `register` adds, then one 405 handler per path. The 405 handlers are
 * in the same router so that an `OPTIONS` or other method gets the 405 instead of falling through.
 */
export function routerOf(register: (add: AddRoute) => void): Router {
  const router = express.Router()
  const methods = new Map<string, Set<RouteMethod>>()
  register((method, path, ...handlers) => {
    router[method](path, ...handlers)
    let set = methods.get(path)
    if (set === undefined) methods.set(path, (set = new Set()))
    set.add(method)
  })
  for (const [path, set] of methods) router.all(path, methodNotAllowed(allowHeader(set)))
  return router
}
