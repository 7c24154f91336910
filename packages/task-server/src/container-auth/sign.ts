/**
 * Issuing container tokens (what Synth's backend does; here for tests, local harnesses and a fake
 * backend) and generating the key pair behind them.
 */
import { generateKeyPairSync, KeyObject, randomUUID } from 'node:crypto'
import { PublicProtocol } from 'paseto'
import { SignFactory } from 'paseto/v4/public'
import { TaskServerError } from '../errors'
import {
  DEFAULT_CONTAINER_TOKEN_AUDIENCE,
  DEFAULT_CONTAINER_TOKEN_ISSUER,
  type ContainerTokenScope,
} from './claims'
import { checkKid, checkSignal, pasetoSecretKey, privateKeyFromSeed, rawPublicKey, rawSeed } from './keys'

/** Options of {@link signContainerToken}. */
export interface SignContainerTokenOptions {
  /**
   * Ed25519 private key: a `KeyObject`, or base64 (standard or URL-safe, padding optional) of its
   * 32-byte seed, as `SYNTH_CONTAINER_AUTH_PRIVATE_KEY` holds it (64 bytes, seed then public key,
   * are accepted too).
   */
  privateKey: KeyObject | string
  /**
   * Key id written to the footer as `{"kid": "..."}`, so verifiers try only the keys with that kid.
   * @default undefined (no footer)
   */
  kid?: string
  /** Scopes granted, written as the `scopes` array: `rollout`, `task_info`, or others the verifier knows. */
  scopes: readonly (ContainerTokenScope | (string & {}))[]
  /** Lifetime in milliseconds, at least 1000 (claims carry whole seconds); synth-ai's tests use 300 s. */
  ttlMs: number
  /**
   * `iss` claim.
   * @default 'synth-backend'
   */
  issuer?: string
  /**
   * `aud` claim.
   * @default 'synth-container'
   */
  audience?: string
  /**
   * Issue time (for tests); read at call time otherwise.
   * @default new Date()
   */
  now?: Date | number
  /** Aborts the signing: the promise rejects with `signal.reason`. */
  signal?: AbortSignal
}

const v4 = /* @__PURE__ */ new PublicProtocol(SignFactory)

function badOption(message: string): TaskServerError {
  return new TaskServerError('TASKAPP_ERR_INVALID_CONFIG', `signContainerToken: ${message}`)
}

function isScopeList(value: unknown): value is readonly string[] {
  return (
    Array.isArray(value) && value.length > 0 && value.every((s) => typeof s === 'string' && /^\S+$/.test(s))
  )
}

/** RFC 3339 in whole seconds (`2030-01-01T00:00:00Z`), as pasetors writes it. */
function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

function signingKey(privateKey: unknown): KeyObject {
  if (typeof privateKey === 'string') return privateKeyFromSeed(privateKey)
  if (
    privateKey instanceof KeyObject &&
    privateKey.type === 'private' &&
    privateKey.asymmetricKeyType === 'ed25519'
  ) {
    return privateKey
  }
  const got =
    privateKey instanceof KeyObject
      ? `a ${privateKey.type} ${privateKey.asymmetricKeyType ?? 'symmetric'} key`
      : privateKey === null
        ? 'null'
        : typeof privateKey
  throw new TaskServerError(
    'TASKAPP_ERR_INVALID_CONTAINER_KEY',
    `signContainerToken: "privateKey" must be an Ed25519 private KeyObject or base64 of its 32-byte seed, got ${got}.`,
  )
}

/**
 * Signs a container token: PASETO `v4.public` with claims `iss`, `aud`, `iat`, `nbf`, `exp`
 * (RFC 3339, whole seconds), a UUID `jti` and `scopes`, and the footer `{"kid": "..."}` when `kid`
 * is given. It is what Synth's backend sends in `X-Synth-Container-Authorization: Bearer <token>`.
 *
 * @throws {@link TaskServerError} `TASKAPP_ERR_INVALID_CONTAINER_KEY` for an unusable `privateKey`
 * or `kid`, `TASKAPP_ERR_INVALID_CONFIG` for other bad options (the promise rejects).
 *
 * @example
 * ```ts
 * const pair = generateContainerKeyPair({ kid: 'k1' })
 * const token = await signContainerToken({ privateKey: pair.privateKey, kid: 'k1', scopes: ['rollout'], ttlMs: 300_000 })
 * await fetch(`${url}/rollout`, { method: 'POST', headers: { 'X-Synth-Container-Authorization': `Bearer ${token}` }, body })
 * ```
 */
export async function signContainerToken(options: SignContainerTokenOptions): Promise<string> {
  if (typeof options !== 'object' || options === null) throw badOption('options must be an object.')
  const {
    kid,
    scopes,
    ttlMs,
    issuer = DEFAULT_CONTAINER_TOKEN_ISSUER,
    audience = DEFAULT_CONTAINER_TOKEN_AUDIENCE,
    now,
  } = options
  checkKid(kid, () => 'signContainerToken: "kid"')
  if (!isScopeList(scopes)) {
    throw badOption('"scopes" must be a non-empty array of scope names without whitespace, e.g. ["rollout"].')
  }
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < 1000) {
    throw badOption('"ttlMs" must be a finite number of milliseconds >= 1000.')
  }
  if (typeof issuer !== 'string' || issuer === '') throw badOption('"issuer" must be a non-empty string.')
  if (typeof audience !== 'string' || audience === '')
    throw badOption('"audience" must be a non-empty string.')
  const nowMs = now === undefined ? Date.now() : new Date(now).valueOf()
  if (Number.isNaN(nowMs)) throw badOption('"now" must be a valid Date or epoch milliseconds.')
  const signal = checkSignal(options.signal, badOption)
  signal?.throwIfAborted()
  const key = await pasetoSecretKey(signingKey(options.privateKey))
  signal?.throwIfAborted()

  const issuedAt = Math.floor(nowMs / 1000)
  const claims = {
    iss: issuer,
    aud: audience,
    iat: rfc3339(issuedAt),
    nbf: rfc3339(issuedAt),
    exp: rfc3339(Math.floor((nowMs + ttlMs) / 1000)),
    jti: randomUUID(),
    scopes: [...scopes],
  }
  const token = await v4.Sign(key, claims, {
    ...(kid === undefined ? {} : { footer: Buffer.from(JSON.stringify({ kid }), 'utf8') }),
    addIssuedAt: false,
  })
  signal?.throwIfAborted()
  return token
}

/** A fresh container-token key pair, in every form the env variables and APIs take. */
export interface ContainerKeyPair {
  /** The kid, when one was given. */
  readonly kid?: string
  /** Ed25519 private key, for {@link signContainerToken}. */
  readonly privateKey: KeyObject
  /** Standard base64 of the 32-byte seed: the value of `SYNTH_CONTAINER_AUTH_PRIVATE_KEY`. */
  readonly privateKeySeed: string
  /** Standard base64 of the raw 32-byte public key. */
  readonly publicKey: string
  /** `kid:base64` (or `base64` without a kid): one entry of `SYNTH_CONTAINER_TRUSTED_PUBKEYS`. */
  readonly trusted: string
}

/**
 * Generates an Ed25519 key pair for container tokens.
 *
 * @throws {@link TaskServerError} `TASKAPP_ERR_INVALID_CONTAINER_KEY` for a kid that is empty,
 * longer than 128 characters or contains whitespace, `,` or `:`.
 *
 * @example
 * ```ts
 * const pair = generateContainerKeyPair({ kid: 'k1' })
 * process.env.SYNTH_CONTAINER_TRUSTED_PUBKEYS = pair.trusted // 'k1:...'
 * const keys = parseTrustedContainerKeys(pair.trusted)
 * ```
 */
export function generateContainerKeyPair(options: { kid?: string } = {}): ContainerKeyPair {
  const kid = checkKid(options.kid, () => 'generateContainerKeyPair: "kid"')
  const { privateKey, publicKey: publicKeyObject } = generateKeyPairSync('ed25519')
  const publicKey = rawPublicKey(publicKeyObject).toString('base64')
  const privateKeySeed = rawSeed(privateKey).toString('base64')
  return kid === undefined
    ? { privateKey, privateKeySeed, publicKey, trusted: publicKey }
    : { kid, privateKey, privateKeySeed, publicKey, trusted: `${kid}:${publicKey}` }
}
