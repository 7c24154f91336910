/** `GET /debug/env` (only with `exposeDebugEnv`): which vendor keys are set, as 6-character prefixes. */
import type { RequestHandler, Router } from 'express'
import { routerOf } from './route-table'

function mask(value: string | undefined): string {
  return !value ? '' : value.length > 6 ? `${value.slice(0, 6)}…` : value
}

/** The router for `/debug/env`. */
export function debugEnvRoutes(auth: RequestHandler): Router {
  return routerOf((add) => {
    add('get', '/debug/env', auth, (_req, res) => {
      res.json({
        has_ENVIRONMENT_API_KEY: Boolean(process.env.ENVIRONMENT_API_KEY),
        OPENAI_API_KEY_prefix: mask(process.env.OPENAI_API_KEY),
        GROQ_API_KEY_prefix: mask(process.env.GROQ_API_KEY),
      })
    })
  })
}
