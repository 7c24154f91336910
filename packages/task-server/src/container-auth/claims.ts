/**
 * What container tokens carry, as synth-ai's backend issues them (reference §4): the header they
 * come in, the default issuer and audience, the route scopes and how scopes are read from claims.
 */

/**
 * Request header carrying a container token: `X-Synth-Container-Authorization: Bearer <token>`
 * (lower-case, as Node's `req.headers` has it).
 *
 * @example
 * ```ts
 * const result = await verifyContainerToken(req.headers[CONTAINER_AUTH_HEADER] as string | undefined, options)
 * ```
 */
export const CONTAINER_AUTH_HEADER = 'x-synth-container-authorization'

/** `iss` of container tokens unless configured (`SYNTH_CONTAINER_AUTH_ISSUER` in synth-ai). */
export const DEFAULT_CONTAINER_TOKEN_ISSUER = 'synth-backend'

/** `aud` of container tokens. */
export const DEFAULT_CONTAINER_TOKEN_AUDIENCE = 'synth-container'

/**
 * The scopes a route needs: `rollout` for `POST /rollout`, `task_info` for `/task_info` and `/info`.
 *
 * @example
 * ```ts
 * const scope: ContainerTokenScope = req.path === '/rollout' ? 'rollout' : 'task_info'
 * ```
 */
export const CONTAINER_TOKEN_SCOPES = ['rollout', 'task_info'] as const

/** One of {@link CONTAINER_TOKEN_SCOPES}. */
export type ContainerTokenScope = (typeof CONTAINER_TOKEN_SCOPES)[number]

/**
 * The claims of a verified container token. `exp`, `nbf` and `iat` are RFC 3339 strings; scopes
 * come as a `scopes` array or a space-separated `scope` string (read both with the `scopes` field
 * of the verification result). Other claims are passed through.
 *
 * @example
 * ```ts
 * const claims: ContainerTokenClaims = { iss: 'synth-backend', aud: 'synth-container', exp: '2030-01-01T00:00:00Z', scopes: ['rollout'] }
 * ```
 */
export interface ContainerTokenClaims {
  /** Issuer. */
  iss?: string
  /** Audience. */
  aud?: string
  /** Expiry (RFC 3339). */
  exp?: string
  /** Not before (RFC 3339). */
  nbf?: string
  /** Issued at (RFC 3339). */
  iat?: string
  /** Token id (a UUID from synth-ai's backend). */
  jti?: string
  /** Granted scopes. */
  scopes?: unknown
  /** Granted scopes, space-separated (the OAuth form). */
  scope?: unknown
  [claim: string]: unknown
}

/** The scopes granted by `scopes` (array of strings) and `scope` (space-separated string), deduplicated. */
export function grantedScopes(claims: ContainerTokenClaims): string[] {
  const out = new Set<string>()
  if (Array.isArray(claims.scopes)) {
    for (const s of claims.scopes as unknown[]) if (typeof s === 'string' && s !== '') out.add(s)
  }
  if (typeof claims.scope === 'string') {
    for (const s of claims.scope.split(/\s+/)) if (s !== '') out.add(s)
  }
  return [...out]
}
