/**
 * Verification of container tokens (`X-Synth-Container-Authorization: Bearer <PASETO v4.public>`),
 * as synth-ai's container does it: footer kid selects the key, then signature, time claims with a
 * tolerance, `aud`, `iss`, and the route's scope.
 */
import { ClaimValidationError, InspectFooter, PasetoError, PublicProtocol } from 'paseto'
import type { TokenResult } from 'paseto'
import { VerifyFactory } from 'paseto/v4/public'
import { TaskServerError } from '../errors'
import {
  CONTAINER_TOKEN_SCOPES,
  DEFAULT_CONTAINER_TOKEN_AUDIENCE,
  DEFAULT_CONTAINER_TOKEN_ISSUER,
  grantedScopes,
  type ContainerTokenClaims,
  type ContainerTokenScope,
} from './claims'
import { checkSignal, checkTrustedContainerKeys, pasetoPublicKey, type ContainerPublicKey } from './keys'

/** Options of {@link verifyContainerToken}. */
export interface VerifyContainerTokenOptions {
  /** Trusted public keys (from {@link parseTrustedContainerKeys}). */
  keys: readonly ContainerPublicKey[]
  /** The scope the route needs: `rollout` or `task_info`; `null` for a route that needs none (any valid token). */
  scope: ContainerTokenScope | null
  /**
   * Expected `iss`.
   * @default 'synth-backend'
   */
  issuer?: string
  /**
   * Expected `aud`.
   * @default 'synth-container'
   */
  audience?: string
  /**
   * Clock skew allowed on `exp`, `nbf` and `iat`, in milliseconds (tokens carry whole seconds).
   * @default 30000
   */
  clockToleranceMs?: number
  /**
   * The current time (for tests); read at call time otherwise, so fake timers apply.
   * @default new Date()
   */
  now?: Date | number
  /** Aborts the check: the promise rejects with `signal.reason` (a bad token still only resolves). */
  signal?: AbortSignal
}

/** Why a request carries no usable token: none at all, or one that was refused. */
export type ContainerAuthFailureReason = 'auth_missing' | 'auth_invalid'

/** What {@link verifyContainerToken} answers; it never throws on a bad token. */
export type ContainerTokenVerification =
  | {
      readonly ok: true
      /** The authenticated claims. */
      readonly claims: ContainerTokenClaims
      /** Every granted scope (`scopes` and `scope` together). */
      readonly scopes: readonly string[]
      /** The kid of the key that verified the token, if it has one. */
      readonly kid?: string
    }
  | {
      readonly ok: false
      /** `auth_missing`: no header (or an empty one); `auth_invalid`: a token was refused. */
      readonly reason: ContainerAuthFailureReason
      /** What was wrong, for logs and the 401 body; never contains the token. */
      readonly message: string
    }

/** Tokens longer than this are refused unread (a real one is a few hundred characters). */
const MAX_TOKEN_LENGTH = 8192
const TOKEN_PREFIX = 'v4.public.'
const SIGNATURE_FAILED = 'Token signature verification failed'

const v4 = /* @__PURE__ */ new PublicProtocol(VerifyFactory)

function refuse(message: string): ContainerTokenVerification {
  return { ok: false, reason: 'auth_invalid', message: `Container token refused: ${message}.` }
}

/** A kid from a token footer, quoted when it is short and plain, so the message cannot carry junk. */
function showKid(kid: string): string {
  return /^[\w.-]{1,64}$/.test(kid) ? `"${kid}"` : `(${kid.length} characters, not shown)`
}

function badOption(message: string): TaskServerError {
  return new TaskServerError('TASKAPP_ERR_INVALID_CONFIG', `verifyContainerToken: ${message}`)
}

function checkOptions(options: VerifyContainerTokenOptions) {
  if (typeof options !== 'object' || options === null) throw badOption('options must be an object.')
  const keys = checkTrustedContainerKeys(options.keys)
  const {
    scope,
    issuer = DEFAULT_CONTAINER_TOKEN_ISSUER,
    audience = DEFAULT_CONTAINER_TOKEN_AUDIENCE,
    clockToleranceMs = 30_000,
    now,
  } = options
  if (scope !== null && !(CONTAINER_TOKEN_SCOPES as readonly unknown[]).includes(scope)) {
    throw badOption(`"scope" must be one of ${CONTAINER_TOKEN_SCOPES.join(', ')} or null.`)
  }
  if (typeof issuer !== 'string' || issuer === '') throw badOption('"issuer" must be a non-empty string.')
  if (typeof audience !== 'string' || audience === '')
    throw badOption('"audience" must be a non-empty string.')
  if (typeof clockToleranceMs !== 'number' || !Number.isFinite(clockToleranceMs) || clockToleranceMs < 0) {
    throw badOption('"clockToleranceMs" must be a finite number >= 0.')
  }
  const date = now === undefined ? new Date() : new Date(now)
  if (Number.isNaN(date.valueOf())) throw badOption('"now" must be a valid Date or epoch milliseconds.')
  const signal = checkSignal(options.signal, badOption)
  return { keys, scope, issuer, audience, clockToleranceMs, date, signal }
}

/** The token in a header value: `Bearer ` (any case) is optional. Undefined when the value is empty. */
function tokenOf(header: string): string | undefined {
  const value = header.trim()
  if (value === '') return undefined
  const bearer = /^bearer(?:\s+|$)/i.exec(value)
  return bearer ? value.slice(bearer[0].length) : value
}

/** The footer's kid: `undefined` without a footer or without a kid, a string to refuse with otherwise. */
function footerKid(token: string): { kid?: string } | { problem: string } {
  let bytes: Uint8Array
  try {
    bytes = InspectFooter(token)
  } catch (err) {
    return {
      problem: `it is not a well-formed PASETO (${err instanceof PasetoError ? err.message : 'unreadable'})`,
    }
  }
  if (bytes.length === 0) return {}
  let footer: unknown
  try {
    footer = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return { problem: 'its footer is not JSON (expected {"kid": "..."})' }
  }
  if (typeof footer !== 'object' || footer === null || Array.isArray(footer)) {
    return { problem: 'its footer is not a JSON object (expected {"kid": "..."})' }
  }
  if (!('kid' in footer)) return {}
  const { kid } = footer
  if (typeof kid !== 'string' || kid === '') return { problem: 'its footer "kid" is not a non-empty string' }
  return { kid }
}

function claimProblem(err: ClaimValidationError, issuer: string, audience: string): string {
  if (err.claim === 'aud') return `its "aud" claim is not "${audience}"`
  if (err.claim === 'iss') return `its "iss" claim is not "${issuer}"`
  // paseto's own messages: "Token has expired", "Token is not active yet", "Token was issued in the
  // future", 'Missing required "exp" claim', '"nbf" must be a valid RFC 3339 date-time', ...
  return `${err.message} (clock tolerance applied)`
}

/**
 * Verifies the `X-Synth-Container-Authorization` header of a request to a task app, as synth-ai's
 * container does: `Bearer ` (any case) is optional; the token must be PASETO `v4.public`; a footer
 * `{"kid": "..."}` selects the trusted keys with that kid (an unknown kid is refused), a token
 * without one is tried against every key; `exp`, `nbf` and `iat` are checked with
 * `clockToleranceMs` of slack (`exp` is required); `aud` and `iss` must match; and the `scopes`
 * array or the space-separated `scope` string must include `scope`.
 *
 * Never throws on a bad token: the result says `auth_missing` (no header, or an empty one) or
 * `auth_invalid` with a message that says what was wrong without echoing the token. Throws (rejects)
 * only on bad options: `TASKAPP_ERR_INVALID_CONTAINER_KEY` for `keys`, `TASKAPP_ERR_INVALID_CONFIG`
 * for the rest.
 *
 * @example
 * ```ts
 * const keys = parseTrustedContainerKeys(process.env.SYNTH_CONTAINER_TRUSTED_PUBKEYS ?? '')
 * const result = await verifyContainerToken(req.get('X-Synth-Container-Authorization'), { keys, scope: 'rollout' })
 * if (!result.ok) res.status(401).json({ detail: { error: { code: result.reason, message: result.message } } })
 * ```
 */
export async function verifyContainerToken(
  header: string | undefined,
  options: VerifyContainerTokenOptions,
): Promise<ContainerTokenVerification> {
  const { keys, scope, issuer, audience, clockToleranceMs, date, signal } = checkOptions(options)
  signal?.throwIfAborted()
  const token = typeof header === 'string' ? tokenOf(header) : undefined
  if (token === undefined) {
    return {
      ok: false,
      reason: 'auth_missing',
      message: 'Container token missing: send X-Synth-Container-Authorization: Bearer <token>.',
    }
  }
  if (token === '') return refuse('the header has "Bearer" but no token')
  if (token.length > MAX_TOKEN_LENGTH) return refuse(`it is longer than ${MAX_TOKEN_LENGTH} characters`)
  if (!token.startsWith(TOKEN_PREFIX)) {
    const kind = /^(v\d{1,2}\.(?:local|public))\./.exec(token)?.[1]
    return refuse(`it is not a PASETO v4.public token${kind === undefined ? '' : ` (got ${kind})`}`)
  }
  const footer = footerKid(token)
  if ('problem' in footer) return refuse(footer.problem)
  const { kid } = footer
  const candidates = kid === undefined ? keys : keys.filter((k) => k.kid === kid)
  if (candidates.length === 0) return refuse(`no trusted key has the footer's kid ${showKid(kid ?? '')}`)

  const consume = { audience, issuer, clockTolerance: clockToleranceMs / 1000, now: date }
  let lastProblem = SIGNATURE_FAILED
  for (const candidate of candidates) {
    let result: TokenResult
    try {
      result = await v4.Verify(await pasetoPublicKey(candidate.key), token, consume)
    } catch (err) {
      signal?.throwIfAborted()
      // The signature held (claims are read after it): no other key can do better.
      if (err instanceof ClaimValidationError) return refuse(claimProblem(err, issuer, audience))
      // A signature that fails with this key, or a malformed token (fails with every key alike).
      lastProblem = err instanceof PasetoError ? err.message : 'it could not be verified'
      continue
    }
    signal?.throwIfAborted()
    const claims = result.claims as ContainerTokenClaims
    const scopes = grantedScopes(claims)
    if (scope !== null && !scopes.includes(scope)) {
      const shown = scopes.slice(0, 8).map((s) => JSON.stringify(s.slice(0, 64)))
      return refuse(
        `it does not grant the "${scope}" scope (${shown.length === 0 ? 'it grants none' : `it grants ${shown.join(', ')}`})`,
      )
    }
    return candidate.kid === undefined
      ? { ok: true, claims, scopes }
      : { ok: true, claims, scopes, kid: candidate.kid }
  }
  if (lastProblem !== SIGNATURE_FAILED) return refuse(`it is not a well-formed PASETO (${lastProblem})`)
  return refuse(
    kid === undefined
      ? `its signature matches none of the ${candidates.length} trusted key(s)`
      : `its signature does not match the trusted key(s) with kid ${showKid(kid)}`,
  )
}
