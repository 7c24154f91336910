/**
 * Container tokens for the backend's calls to task apps: PASETO v4.public signed with the
 * backend's Ed25519 key (via `@taskapp/task-server`'s `signContainerToken`), cached until shortly
 * before they expire.
 */
import { createPrivateKey, createPublicKey, KeyObject } from 'node:crypto'
import { signContainerToken } from '@taskapp/task-server'
import { JobsError } from '../errors'

/** Signs and caches the container tokens of one backend. */
export interface TokenSigner {
  /** Standard base64 of the raw 32-byte public key. */
  readonly publicKey: string
  /** `kid:base64` (or `base64`): one entry of a task app's `SYNTH_CONTAINER_TRUSTED_PUBKEYS`. */
  readonly trusted: string
  /** A token with scopes `rollout` and `task_info`, valid for at least another minute. */
  token(signal?: AbortSignal): Promise<string>
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const TTL_MS = 300_000
const RENEW_BEFORE_MS = 60_000

function invalidKey(message: string): JobsError {
  return new JobsError('TASKAPP_ERR_JOBS_INVALID_CONFIG', `createLocalBackend: "signingKey" ${message}`)
}

/** The private KeyObject of a signing key given as a KeyObject or base64 of its 32-byte seed. */
export function signingKeyObject(key: KeyObject | string): KeyObject {
  if (key instanceof KeyObject) {
    if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
      throw invalidKey(
        `must be an Ed25519 private key, got a ${key.type} ${key.asymmetricKeyType ?? 'symmetric'} key.`,
      )
    }
    return key
  }
  if (typeof key !== 'string')
    throw invalidKey('must be an Ed25519 private KeyObject or base64 of its 32-byte seed.')
  const text = key.trim().replace(/={1,2}$/, '')
  const urlSafe = /^[A-Za-z0-9_-]+$/.test(text)
  if (!urlSafe && !/^[A-Za-z0-9+/]+$/.test(text)) throw invalidKey('is not base64 (standard or URL-safe).')
  const bytes = Buffer.from(text, urlSafe ? 'base64url' : 'base64')
  if (bytes.length !== 32 && bytes.length !== 64) {
    throw invalidKey(
      `decodes to ${bytes.length} bytes; expected a 32-byte Ed25519 seed (or 64: seed and public key).`,
    )
  }
  return createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, bytes.subarray(0, 32)]),
    format: 'der',
    type: 'pkcs8',
  })
}

/**
 * A signer for `key`, with `kid` in the token footer when given.
 *
 * @throws {@link JobsError} `TASKAPP_ERR_JOBS_INVALID_CONFIG` for an unusable key.
 */
export function createTokenSigner(key: KeyObject | string, kid?: string): TokenSigner {
  const privateKey = signingKeyObject(key)
  const { x } = createPublicKey(privateKey).export({ format: 'jwk' })
  const publicKey = Buffer.from(x ?? '', 'base64url').toString('base64')
  let cached: { token: string; expiresAt: number } | undefined
  let pending: Promise<string> | undefined
  const sign = async (signal?: AbortSignal): Promise<string> => {
    const now = Date.now()
    const token = await signContainerToken({
      privateKey,
      scopes: ['rollout', 'task_info'],
      ttlMs: TTL_MS,
      now,
      ...(kid !== undefined && { kid }),
      ...(signal !== undefined && { signal }),
    })
    cached = { token, expiresAt: now + TTL_MS }
    return token
  }
  return {
    publicKey,
    trusted: kid === undefined ? publicKey : `${kid}:${publicKey}`,
    async token(signal) {
      if (cached !== undefined && cached.expiresAt - Date.now() > RENEW_BEFORE_MS) return cached.token
      pending ??= sign(signal).finally(() => {
        pending = undefined
      })
      return pending
    },
  }
}
