/**
 * Minimal CORS like Starlette's `CORSMiddleware(allow_origins=..., allow_credentials=True,
 * allow_methods=["*"], allow_headers=["*"])`: an empty origin list allows any origin.
 */
import type { NextFunction, Request, Response } from 'express'

/** Returns the CORS middleware for these origins. */
export function createCorsMiddleware(origins: readonly string[]) {
  const any = origins.length === 0 || origins.includes('*')
  const allowed = new Set(origins)
  return (req: Request, res: Response, next: NextFunction): void => {
    const origin = req.headers.origin
    if (origin === undefined || !(any || allowed.has(origin))) {
      next()
      return
    }
    res.setHeader('Access-Control-Allow-Origin', origin)
    res.setHeader('Access-Control-Allow-Credentials', 'true')
    res.append('Vary', 'Origin')
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      res.setHeader('Access-Control-Allow-Methods', 'DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT')
      const requested = req.headers['access-control-request-headers']
      if (requested) res.setHeader('Access-Control-Allow-Headers', requested)
      res.setHeader('Access-Control-Max-Age', '600')
      res.status(200).end()
      return
    }
    next()
  }
}
