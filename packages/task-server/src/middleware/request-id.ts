/** The request id: the caller's `X-Request-Id` when it is a safe token, else a UUID; echoed in the answer. */
import { randomUUID } from 'node:crypto'
import type { RequestHandler, Response } from 'express'

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/

/** Sets `res.locals.requestId` and the `X-Request-Id` response header. */
export const requestId: RequestHandler = (req, res, next) => {
  const given = req.headers['x-request-id']
  const id = typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID()
  res.locals.requestId = id
  res.setHeader('X-Request-Id', id)
  next()
}

/** The id {@link requestId} gave this request. */
export function requestIdOf(res: Response): string {
  return res.locals.requestId as string
}
