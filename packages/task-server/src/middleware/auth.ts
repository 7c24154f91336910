/** The API-key check in front of every route but `/` (the key matching itself is in `../auth`). */
import type { RequestHandler } from 'express'
import { candidateKeys, isAuthorized, type KeySource } from '../auth'
import { sendError } from '../http-errors'
import { safeLog, type TaskAppLogger } from '../logger'
import { requestIdOf } from './request-id'

/** How the key check is configured. */
export interface AuthOptions {
  keys: KeySource
  /** `requireApiKey`; when false every request passes. */
  required: boolean
  /** `authFailureStatus`. */
  failureStatus: 400 | 401
  logger: TaskAppLogger
}

/** Passes requests with an allowed key; answers 400/401 `unauthorised` or 503 `missing_environment_api_key`. */
export function createAuth(options: AuthOptions): RequestHandler {
  const { keys, required, failureStatus, logger } = options
  return (req, res, next) => {
    if (!required) {
      next()
      return
    }
    const allowed = keys.current()
    if (allowed.keys.length === 0) {
      sendError(
        res,
        503,
        'missing_environment_api_key',
        'No API key is configured on the server; set ENVIRONMENT_API_KEY (or pass apiKeys) and restart the task app.',
      )
      return
    }
    const candidates = candidateKeys(req.headers)
    if (isAuthorized(candidates, allowed)) {
      next()
      return
    }
    safeLog(
      logger,
      'warn',
      {
        requestId: requestIdOf(res),
        path: req.path,
        presented: candidates.length,
        lengths: candidates.map((c) => c.length),
      },
      'task-server: request rejected: API key missing or wrong',
    )
    if (failureStatus === 401) res.setHeader('WWW-Authenticate', 'Bearer')
    sendError(
      res,
      failureStatus,
      'unauthorised',
      candidates.length === 0
        ? 'API key missing: send it in X-API-Key, X-API-Keys or Authorization: Bearer.'
        : 'API key not accepted: send one of the ENVIRONMENT_API_KEY keys in X-API-Key, X-API-Keys or Authorization: Bearer.',
    )
  }
}
