/**
 * Ed25519 keys of container tokens: trusted public keys parsed from
 * `SYNTH_CONTAINER_TRUSTED_PUBKEYS` or from config, signing keys from a base64 seed, and their
 * one-time conversion into the `paseto` library's key wrappers.
 */
import { createPrivateKey, createPublicKey, KeyObject, webcrypto } from 'node:crypto'
import { PublicKeyFromCryptoKey, SecretKeyFromCryptoKey } from 'paseto/v4/public'
import type { PublicKey, SecretKey } from 'paseto/v4/public'
import { keyPrefix } from '../auth'
import { TaskServerError } from '../errors'

/**
 * One trusted verification key: a `node:crypto` Ed25519 public `KeyObject`, with the key id a
 * token's footer (`{"kid": "..."}`) can name.
 *
 * @example
 * ```ts
 * const trusted: ContainerPublicKey = { kid: 'k1', key: createPublicKey(pem) }
 * ```
 */
export interface ContainerPublicKey {
  /**
   * Key id. A token whose footer names a kid is checked only against keys with that kid; a token
   * without one against every key.
   */
  readonly kid?: string
  /** Ed25519 public key. */
  readonly key: KeyObject
}

/**
 * One trusted key as config may give it: an env-style string (`kid:base64` or `base64`), an
 * Ed25519 public `KeyObject`, or `{ kid?, key }` where `key` is base64 (raw 32 bytes) or a `KeyObject`.
 *
 * @example
 * ```ts
 * const keys: TrustedContainerKeyInput[] = ['k1:ZHVtbXk...', { kid: 'k2', key: publicKeyObject }]
 * ```
 */
export type TrustedContainerKeyInput =
  string | KeyObject | { readonly kid?: string; readonly key: string | KeyObject }

/** Raw Ed25519 public keys and seeds are this long. */
const ED25519_BYTES = 32
/** PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
/** A kid: 1 to 128 characters, none of them whitespace, `,` or `:` (the separators of the env format). */
const KID_PATTERN = /^[^\s,:]{1,128}$/

function bytesText(n: number): string {
  return n === 1 ? '1 byte' : `${n} bytes`
}

function invalidKey(message: string): TaskServerError {
  return new TaskServerError('TASKAPP_ERR_INVALID_CONTAINER_KEY', message)
}

/**
 * Decodes standard or URL-safe base64, padding optional. Returns the bytes, or why it is not
 * base64 (the two alphabets may not be mixed, `=` only at the end).
 */
export function decodeBase64Key(text: string): Buffer | string {
  const trimmed = text.trim()
  const body = trimmed.replace(/={1,2}$/, '')
  if (body === '') return 'it is empty'
  const standard = /^[A-Za-z0-9+/]+$/.test(body)
  const urlSafe = /^[A-Za-z0-9_-]+$/.test(body)
  if (!standard && !urlSafe) return 'it is not base64 (standard or URL-safe, padding optional)'
  if (body.length % 4 === 1) return 'it is not base64 (its length is impossible)'
  if (trimmed.length !== body.length && trimmed.length % 4 !== 0) return 'its base64 padding is wrong'
  return Buffer.from(body, urlSafe ? 'base64url' : 'base64')
}

/**
 * Where an entry came from and a safe way to show it: its kid (only when it is a valid one, so a
 * misplaced key is never shown whole) and a short prefix of the key text.
 */
function describeEntry(position: number, kid: string | undefined, keyText?: string): string {
  const parts = [
    kid === undefined || !KID_PATTERN.test(kid) ? undefined : `kid "${kid}"`,
    keyText === undefined || keyText.trim() === '' ? undefined : keyPrefix(keyText.trim()),
  ]
  const shown = parts.filter((p) => p !== undefined).join(', ')
  return `trusted container key #${position}${shown === '' ? '' : ` (${shown})`}`
}

/** The kid, checked (1 to 128 characters, no whitespace, `,` or `:`); throws `TASKAPP_ERR_INVALID_CONTAINER_KEY`. */
export function checkKid(kid: unknown, where: () => string): string | undefined {
  if (kid === undefined) return undefined
  if (typeof kid !== 'string' || !KID_PATTERN.test(kid)) {
    throw invalidKey(
      `${where()}: the kid must be 1 to 128 characters without whitespace, "," or ":" (got ${typeof kid === 'string' ? `${kid.length} characters` : typeof kid}).`,
    )
  }
  return kid
}

function publicKeyFromBase64(text: string, where: () => string): KeyObject {
  const bytes = decodeBase64Key(text)
  if (typeof bytes === 'string') throw invalidKey(`${where()}: ${bytes}.`)
  if (bytes.length !== ED25519_BYTES) {
    throw invalidKey(
      `${where()}: decodes to ${bytesText(bytes.length)}; a raw Ed25519 public key is exactly ${ED25519_BYTES}.`,
    )
  }
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: bytes.toString('base64url') },
    format: 'jwk',
  })
}

function checkPublicKeyObject(key: KeyObject, where: () => string): KeyObject {
  if (key.type !== 'public' || key.asymmetricKeyType !== 'ed25519') {
    throw invalidKey(
      `${where()}: expected an Ed25519 public KeyObject, got a ${key.type} ${key.asymmetricKeyType ?? 'symmetric'} key${key.type === 'private' ? ' (pass its public key: createPublicKey(privateKey))' : ''}.`,
    )
  }
  return key
}

function parseEntry(entry: unknown, position: number): ContainerPublicKey {
  if (typeof entry === 'string') {
    const colon = entry.indexOf(':')
    const kidText = colon === -1 ? undefined : entry.slice(0, colon).trim()
    const keyText = colon === -1 ? entry.trim() : entry.slice(colon + 1).trim()
    const where = () => describeEntry(position, kidText, keyText)
    const kid = checkKid(kidText, where)
    return withKid(kid, publicKeyFromBase64(keyText, where))
  }
  if (entry instanceof KeyObject) {
    return { key: checkPublicKeyObject(entry, () => describeEntry(position, undefined)) }
  }
  if (typeof entry === 'object' && entry !== null && 'key' in entry) {
    const { kid: rawKid, key } = entry as { kid?: unknown; key: unknown }
    const kidText = typeof rawKid === 'string' ? rawKid : undefined
    const where = () => describeEntry(position, kidText, typeof key === 'string' ? key : undefined)
    const kid = checkKid(rawKid, where)
    if (typeof key === 'string') return withKid(kid, publicKeyFromBase64(key, where))
    if (key instanceof KeyObject) return withKid(kid, checkPublicKeyObject(key, where))
    throw invalidKey(`${where()}: "key" must be base64 text or a KeyObject, got ${typeof key}.`)
  }
  throw invalidKey(
    `${describeEntry(position, undefined)}: expected "kid:base64", "base64", a KeyObject or { kid?, key }, got ${entry === null ? 'null' : typeof entry}.`,
  )
}

function withKid(kid: string | undefined, key: KeyObject): ContainerPublicKey {
  return kid === undefined ? { key } : { kid, key }
}

/**
 * Parses trusted container-token public keys. A string is the `SYNTH_CONTAINER_TRUSTED_PUBKEYS`
 * format: a comma list of `kid:base64` or `base64` entries (standard or URL-safe base64, padding
 * optional, each exactly 32 raw Ed25519 bytes; empty entries are skipped). An array may mix such
 * strings, Ed25519 public `KeyObject`s and `{ kid?, key }` objects.
 *
 * @throws {@link TaskServerError} `TASKAPP_ERR_INVALID_CONTAINER_KEY` when the list is empty or an
 * entry is unusable; the message names the entry's position (1-based) and shows at most a short
 * prefix of its key.
 *
 * @example
 * ```ts
 * const keys = parseTrustedContainerKeys(process.env.SYNTH_CONTAINER_TRUSTED_PUBKEYS ?? '')
 * // [{ kid: 'k1', key: KeyObject }, { key: KeyObject }]
 * ```
 */
export function parseTrustedContainerKeys(
  input: string | readonly TrustedContainerKeyInput[],
): ContainerPublicKey[] {
  let entries: readonly unknown[]
  if (typeof input === 'string') {
    entries = input.split(',')
  } else if (Array.isArray(input)) {
    entries = input
  } else {
    throw invalidKey(
      `Trusted container keys must be a string ("kid:base64,base64,...") or an array, got ${input === null ? 'null' : typeof input}.`,
    )
  }
  const keys: ContainerPublicKey[] = []
  entries.forEach((entry, index) => {
    if (typeof entry === 'string' && entry.trim() === '') return
    keys.push(parseEntry(entry, index + 1))
  })
  if (keys.length === 0) {
    throw invalidKey(
      'No trusted container keys: give at least one Ed25519 public key (SYNTH_CONTAINER_TRUSTED_PUBKEYS="kid:base64,...").',
    )
  }
  return keys
}

/**
 * Checks an already parsed key list (what `verifyContainerToken` receives): non-empty, each an
 * Ed25519 public `KeyObject` with a valid kid if any.
 */
export function checkTrustedContainerKeys(keys: unknown): readonly ContainerPublicKey[] {
  if (!Array.isArray(keys) || keys.length === 0) {
    throw invalidKey(
      'verifyContainerToken: "keys" must be a non-empty array of { kid?, key: KeyObject } (see parseTrustedContainerKeys).',
    )
  }
  keys.forEach((entry: unknown, index) => {
    const where = () => `verifyContainerToken: keys[${index}]`
    if (
      typeof entry !== 'object' ||
      entry === null ||
      !((entry as { key?: unknown }).key instanceof KeyObject)
    ) {
      throw invalidKey(`${where()} must be { kid?, key: KeyObject } (see parseTrustedContainerKeys).`)
    }
    const { kid, key } = entry as { kid?: unknown; key: KeyObject }
    checkKid(kid, where)
    checkPublicKeyObject(key, where)
  })
  return keys as readonly ContainerPublicKey[]
}

/**
 * An Ed25519 private `KeyObject` from base64 (standard or URL-safe, padding optional) of a 32-byte
 * seed, as `SYNTH_CONTAINER_AUTH_PRIVATE_KEY` holds it, or of 64 bytes (seed then public key, the
 * libsodium layout; the public half must match).
 */
export function privateKeyFromSeed(text: string): KeyObject {
  const where = `Container signing key (${keyPrefix(text.trim())})`
  const bytes = decodeBase64Key(text)
  if (typeof bytes === 'string') throw invalidKey(`${where}: ${bytes}.`)
  if (bytes.length !== ED25519_BYTES && bytes.length !== 2 * ED25519_BYTES) {
    throw invalidKey(
      `${where}: decodes to ${bytesText(bytes.length)}; expected a 32-byte Ed25519 seed (or 64 bytes: seed and public key).`,
    )
  }
  const key = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, bytes.subarray(0, ED25519_BYTES)]),
    format: 'der',
    type: 'pkcs8',
  })
  if (
    bytes.length === 2 * ED25519_BYTES &&
    !rawPublicKey(createPublicKey(key)).equals(bytes.subarray(ED25519_BYTES))
  ) {
    throw invalidKey(`${where}: its last 32 bytes are not the public key of its seed.`)
  }
  return key
}

/** The raw 32 bytes of an Ed25519 public key. */
export function rawPublicKey(key: KeyObject): Buffer {
  const { x } = key.export({ format: 'jwk' })
  return Buffer.from(x ?? '', 'base64url')
}

/** The 32-byte seed of an Ed25519 private key. */
export function rawSeed(key: KeyObject): Buffer {
  const { d } = key.export({ format: 'jwk' })
  return Buffer.from(d ?? '', 'base64url')
}

const publicKeys = new WeakMap<KeyObject, Promise<PublicKey>>()
const secretKeys = new WeakMap<KeyObject, Promise<SecretKey>>()

/** Caches one conversion per `KeyObject`; a failed one is forgotten so a retry can succeed. */
function cached<T>(
  cache: WeakMap<KeyObject, Promise<T>>,
  key: KeyObject,
  convert: () => Promise<T>,
): Promise<T> {
  let found = cache.get(key)
  if (found === undefined) {
    found = convert()
    cache.set(key, found)
    found.catch(() => cache.delete(key))
  }
  return found
}

/** The `paseto` v4 verification key of an Ed25519 public `KeyObject` (converted once). */
export function pasetoPublicKey(key: KeyObject): Promise<PublicKey> {
  return cached(publicKeys, key, async () => {
    const der = key.export({ format: 'der', type: 'spki' })
    const cryptoKey = await webcrypto.subtle.importKey('spki', der, { name: 'Ed25519' }, false, ['verify'])
    return PublicKeyFromCryptoKey(cryptoKey)
  })
}

/**
 * The `paseto` v4 signing key of an Ed25519 private `KeyObject` (converted once). Imported
 * extractable: Node 20 has no `SubtleCrypto.getPublicKey`, so `paseto` derives the public half
 * through a JWK export.
 */
export function pasetoSecretKey(key: KeyObject): Promise<SecretKey> {
  return cached(secretKeys, key, async () => {
    const der = key.export({ format: 'der', type: 'pkcs8' })
    const cryptoKey = await webcrypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, true, ['sign'])
    return SecretKeyFromCryptoKey(cryptoKey)
  })
}

/**
 * The `signal` option of the token functions: undefined, or an `AbortSignal` (else `fail`).
 * @internal
 */
export function checkSignal(signal: unknown, fail: (message: string) => Error): AbortSignal | undefined {
  if (signal === undefined) return undefined
  if (!(signal instanceof AbortSignal)) throw fail('"signal" must be an AbortSignal.')
  return signal
}
