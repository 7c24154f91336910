/** `POST /proxy/v1/chat/completions` (only with `proxy`): the OpenAI-compatible proxy in `../proxy`. */
import type { RequestHandler, Router } from 'express'
import type { TaskAppLogger } from '../logger'
import { createProxyHandler, type ProxyConfig } from '../proxy'
import { routerOf } from './route-table'

/** The router for the proxy; `gates` run first (auth, readiness, JSON body). */
export function proxyRoutes(config: ProxyConfig, logger: TaskAppLogger, gates: RequestHandler[]): Router {
  return routerOf((add) => {
    add('post', '/proxy/v1/chat/completions', ...gates, createProxyHandler(config, logger))
  })
}
