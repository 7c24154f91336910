/**
 * The auth check in front of every route but `/`: API keys (older Synth generation; the key
 * matching itself is in `../auth`) and, when trusted keys are configured, container tokens (newer
 * generation; `../container-auth/verify`). A request passes with either.
 */
import type { Request, RequestHandler, Response } from 'express'
import {
  candidateKeys,
  isLoopbackAddress,
  matchedKey,
  type ContainerAuthSettings,
  type KeySource,
} from '../auth'
import { CONTAINER_AUTH_HEADER, type ContainerTokenScope } from '../container-auth/claims'
import { verifyContainerToken } from '../container-auth/verify'
import { sendError } from '../http-errors'
import { safeLog, type TaskAppLogger } from '../logger'
import { containerOwnerId, setOwner } from '../owner'
import { requestIdOf } from './request-id'

/** How the check is configured. */
export interface AuthOptions {
  keys: KeySource
  /** `requireApiKey`; when false (and no container check) every request passes. */
  required: boolean
  /** `authFailureStatus` (API keys only). */
  failureStatus: 400 | 401
  logger: TaskAppLogger
  /** The container-token check, when trusted keys are configured and the mode is not `disabled`. */
  container?: ContainerAuthSettings
}

/**
 * The scope a route needs from a container token: `rollout` (`/rollout`, `/rollouts/:id`),
 * `task_info` (`/info`, `/task_info`), or `null` (other routes: any valid token).
 */
export type RouteScope = ContainerTokenScope | null

/**
 * Passes requests with an allowed key (recording the key's owner id); answers 400/401
 * `unauthorised` or 503 `missing_environment_api_key`. With `required` off every request passes
 * as the anonymous owner.
 */
function apiKeyAuth(options: AuthOptions): RequestHandler {
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
    const matched = matchedKey(candidates, allowed)
    if (matched !== -1) {
      setOwner(res, allowed.owners[matched] as string)
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

/**
 * Both generations: a valid API key (checked first, synchronously) or a valid container token
 * for `scope` (verified asynchronously; the handler then returns the promise, so a failure reaches
 * Express or `compose`). `optional_local` lets calls without a token through when the socket's
 * peer is loopback and the route has a scope.
 */
function containerAuth(
  options: AuthOptions,
  container: ContainerAuthSettings,
  scope: RouteScope,
): RequestHandler {
  const { keys, required, logger } = options
  const verifyOptions = {
    keys: container.keys,
    scope,
    issuer: container.issuer,
    audience: container.audience,
    clockToleranceMs: container.clockToleranceMs,
  }
  const reject = (req: Request, res: Response, code: 'auth_missing' | 'auth_invalid', message: string) => {
    safeLog(
      logger,
      'warn',
      { requestId: requestIdOf(res), path: req.path, code, reason: message },
      'task-server: request rejected: no valid container token or API key',
    )
    res.setHeader('WWW-Authenticate', 'Bearer')
    sendError(res, 401, code, message)
  }
  return (req, res, next) => {
    const allowed = required ? keys.current() : undefined
    const apiKeysOn = allowed !== undefined && allowed.keys.length > 0
    const candidates = candidateKeys(req.headers)
    const matched = apiKeysOn ? matchedKey(candidates, allowed) : -1
    if (apiKeysOn && matched !== -1) {
      setOwner(res, allowed.owners[matched] as string)
      next()
      return
    }
    const header = req.headers[CONTAINER_AUTH_HEADER]
    const value = Array.isArray(header) ? header.join(',') : header
    if (value === undefined || value.trim() === '') {
      if (
        container.mode === 'optional_local' &&
        scope !== null &&
        isLoopbackAddress(req.socket.remoteAddress) &&
        // A relayed call arrives from the agent on loopback too; the relay marker says it is not local.
        req.headers['x-synth-relay'] === undefined
      ) {
        next()
        return
      }
      const ways = apiKeysOn
        ? 'send X-Synth-Container-Authorization: Bearer <token> or an API key (X-API-Key, X-API-Keys or Authorization: Bearer)'
        : 'send X-Synth-Container-Authorization: Bearer <token>'
      if (candidates.length === 0) reject(req, res, 'auth_missing', `Authentication missing: ${ways}.`)
      else
        reject(
          req,
          res,
          'auth_invalid',
          apiKeysOn
            ? `API key not accepted and no container token sent: ${ways}.`
            : `API keys are not accepted by this task app: ${ways}.`,
        )
      return
    }
    return verifyContainerToken(value, verifyOptions).then((result) => {
      if (!result.ok) {
        reject(req, res, 'auth_invalid', result.message)
        return
      }
      // Tokens change on every call; the issuer owns the jobs they create.
      setOwner(res, containerOwnerId(result.claims.iss ?? container.issuer))
      next()
    })
  }
}

/**
 * The auth gate of a route needing `scope`. Without container settings it is the API-key check
 * alone, synchronous and identical for every scope (400/401 `unauthorised`, 503
 * `missing_environment_api_key`). With them, see the module comment: 401 `auth_missing` when
 * neither a token nor a key was sent, `auth_invalid` otherwise.
 */
export function createAuth(options: AuthOptions, scope: RouteScope = null): RequestHandler {
  return options.container === undefined
    ? apiKeyAuth(options)
    : containerAuth(options, options.container, scope)
}
