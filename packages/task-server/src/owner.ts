/**
 * Who owns an async rollout job: the caller that created it. The auth gate records the owner of
 * each request; the job routes compare it with the owner stored in the job record.
 *
 * - an API key: `key:<32 hex>`, a SHA-256 of the key (the key itself is never stored or logged);
 * - a container token: `container:<iss>` (tokens change on every call, their issuer does not);
 * - no auth at all (`requireApiKey: false`, or `optional_local` without a token): `anonymous`.
 */
import { createHash } from 'node:crypto'
import type { Response } from 'express'

/** The owner of requests that passed without credentials. */
export const ANONYMOUS_OWNER = 'anonymous'

/**
 * The owner id of an API key. A plain hash (no per-process secret), so that task apps sharing one
 * job store agree on it; the domain prefix keeps it from matching a hash of the key used elsewhere.
 */
export function keyOwnerId(key: string): string {
  const digest = createHash('sha256').update('taskapp-job-owner\u0000').update(key, 'utf8').digest('hex')
  return `key:${digest.slice(0, 32)}`
}

/** The owner id of a container token with this issuer. */
export function containerOwnerId(issuer: string): string {
  return `container:${issuer}`
}

/** Records the owner of this request (the auth gate calls it when credentials passed). */
export function setOwner(res: Response, owner: string): void {
  res.locals.owner = owner
}

/** The owner of this request: what the auth gate recorded, else {@link ANONYMOUS_OWNER}. */
export function ownerOf(res: Response): string {
  const owner: unknown = res.locals.owner
  return typeof owner === 'string' ? owner : ANONYMOUS_OWNER
}
