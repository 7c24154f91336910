/**
 * API-key auth compatible with synth-ai's `auth.py`: keys from the config or from
 * `ENVIRONMENT_API_KEY` (falling back to `DEV_ENVIRONMENT_API_KEY`, then `dev_environment_api_key`)
 * plus the comma-separated `ENVIRONMENT_API_KEY_ALIASES`, read by `@taskapp/core`'s `environmentApiKeys`; presented in `X-API-Key`, `X-API-Keys` (comma list) or
 * `Authorization: Bearer`; compared in constant time.
 */
import { timingSafeEqual } from 'node:crypto'
import {
  ENVIRONMENT_API_KEY_ALIASES_ENV,
  ENVIRONMENT_API_KEY_ENV_NAMES,
  environmentApiKeys,
} from '@taskapp/core'
import type { IncomingHttpHeaders } from 'node:http'
import { CONTAINER_AUTH_MODES, type ContainerAuthConfig, type ContainerAuthMode } from './config'
import { DEFAULT_CONTAINER_TOKEN_AUDIENCE, DEFAULT_CONTAINER_TOKEN_ISSUER } from './container-auth/claims'
import { parseTrustedContainerKeys, type ContainerPublicKey } from './container-auth/keys'
import { TaskServerError } from './errors'
import { keyOwnerId } from './owner'

/** At most this many candidate keys are checked per request (a header full of commas costs no more). */
const MAX_CANDIDATES = 16
/** Candidates longer than this are ignored (no key is that long; it bounds hashing work). */
const MAX_KEY_LENGTH = 4096

interface KeySet {
  readonly keys: readonly string[]
  /** UTF-8 bytes of each key. */
  readonly buffers: readonly Buffer[]
  /** The job owner id of each key (a hash, see `./owner`), computed once per key set. */
  readonly owners: readonly string[]
}

function keySet(keys: readonly string[]): KeySet {
  return { keys, buffers: keys.map((k) => Buffer.from(k, 'utf8')), owners: keys.map(keyOwnerId) }
}

/** The allowed keys: the configured ones, or those in the environment at call time. */
export interface KeySource {
  current(): KeySet
}

/** Builds the key source; with `apiKeys` the environment is never read. */
export function createKeySource(
  apiKeys: readonly string[] | undefined,
  env: NodeJS.ProcessEnv = process.env,
): KeySource {
  if (apiKeys !== undefined) {
    const keys = [...new Set(apiKeys.map((k) => k.trim()).filter((k) => k !== ''))]
    const fixed = keySet(keys)
    return { current: () => fixed }
  }
  let cacheKey: string | undefined
  let cached = keySet([])
  return {
    current() {
      // The variables as they are now; the key set is rebuilt (by core's one reader) when they change.
      let key = env[ENVIRONMENT_API_KEY_ALIASES_ENV] ?? ''
      for (const name of ENVIRONMENT_API_KEY_ENV_NAMES) key += `\u0000${env[name] ?? ''}`
      if (key !== cacheKey) {
        cached = keySet(environmentApiKeys(env))
        cacheKey = key
      }
      return cached
    },
  }
}

function headerValues(value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

/**
 * Candidate keys in a request: every comma-separated entry of `X-API-Key`, `X-API-Keys` and
 * `Authorization`, with a leading `Bearer ` removed (case-insensitive).
 */
export function candidateKeys(headers: IncomingHttpHeaders): string[] {
  const out: string[] = []
  const raw = [
    ...headerValues(headers['x-api-key']),
    ...headerValues(headers['x-api-keys']),
    ...headerValues(headers.authorization),
  ]
  for (const value of raw) {
    for (const part of value.split(',')) {
      let k = part.trim()
      if (/^bearer\s/i.test(k)) k = k.slice(6).trim()
      if (k !== '' && k.length <= MAX_KEY_LENGTH) out.push(k)
      if (out.length >= MAX_CANDIDATES) return out
    }
  }
  return out
}

/**
 * The index of the allowed key that the first matching candidate equals, or -1. Every comparison is a
 * `timingSafeEqual` over the allowed key's full length (a candidate of another length is replaced
 * by the key itself and counted as a mismatch), and all pairs are compared without early exit, so
 * the time depends only on the number and lengths of the allowed keys, never on how much of a key
 * was guessed or which key matched.
 */
export function matchedKey(candidates: readonly string[], allowed: KeySet): number {
  let matched = -1
  for (const candidate of candidates) {
    const c = Buffer.from(candidate, 'utf8')
    let index = 0
    for (const a of allowed.buffers) {
      const sameLength = c.length === a.length
      const equal = timingSafeEqual(sameLength ? c : a, a)
      // Non-short-circuiting: every pair is compared; the first match is kept.
      matched = equal && sameLength && matched === -1 ? index : matched
      index += 1
    }
  }
  return matched
}

/** True when any candidate equals any allowed key (see {@link matchedKey}). */
export function isAuthorized(candidates: readonly string[], allowed: KeySet): boolean {
  return matchedKey(candidates, allowed) !== -1
}

/**
 * `abcdef...` for a key, `<unset>` for none: the most of a key this package ever shows. At most 6
 * characters and at most a quarter of the key, so a short key is never shown whole.
 */
export function keyPrefix(key: string | undefined): string {
  if (!key) return '<unset>'
  return `${key.slice(0, Math.min(6, Math.floor(key.length / 4)))}...`
}

/** The container-token check as `createTaskApp` runs it (only when trusted keys exist and the mode is not `disabled`). */
export interface ContainerAuthSettings {
  readonly keys: readonly ContainerPublicKey[]
  readonly mode: Exclude<ContainerAuthMode, 'disabled'>
  readonly issuer: string
  readonly audience: string
  readonly clockToleranceMs: number
}

function nonBlank(value: string | undefined): string | undefined {
  const v = value?.trim()
  return v === undefined || v === '' ? undefined : v
}

/**
 * Resolves `containerAuth` against `SYNTH_CONTAINER_TRUSTED_PUBKEYS`, `SYNTH_CONTAINER_AUTH_MODE`
 * and `SYNTH_CONTAINER_AUTH_ISSUER` (the config wins; blank variables count as unset). Undefined
 * when there is no token check: no trusted keys, or mode `disabled`. The environment is read once,
 * here; the mode variable is only read (and checked) when trusted keys exist.
 *
 * @throws {@link TaskServerError} `TASKAPP_ERR_INVALID_CONTAINER_KEY` for unusable trusted keys;
 * `TASKAPP_ERR_INVALID_CONFIG` for a bad `SYNTH_CONTAINER_AUTH_MODE`, or a config `mode` of
 * `required` / `optional_local` with no trusted key anywhere.
 *
 * @example
 * ```ts
 * const settings = resolveContainerAuth(cfg.containerAuth) // undefined: API keys only, as before
 * ```
 */
export function resolveContainerAuth(
  config: ContainerAuthConfig | undefined,
  env: NodeJS.ProcessEnv = process.env,
): ContainerAuthSettings | undefined {
  const input = config?.trustedKeys ?? nonBlank(env.SYNTH_CONTAINER_TRUSTED_PUBKEYS)
  if (input === undefined) {
    if (config?.mode === 'required' || config?.mode === 'optional_local') {
      throw new TaskServerError(
        'TASKAPP_ERR_INVALID_CONFIG',
        `Invalid TaskAppConfig: containerAuth.mode is '${config.mode}' but no trusted container key is configured; set containerAuth.trustedKeys or SYNTH_CONTAINER_TRUSTED_PUBKEYS.`,
      )
    }
    return undefined
  }
  let mode = config?.mode
  if (mode === undefined) {
    const fromEnv = nonBlank(env.SYNTH_CONTAINER_AUTH_MODE)?.toLowerCase()
    if (fromEnv !== undefined && !(CONTAINER_AUTH_MODES as readonly string[]).includes(fromEnv)) {
      throw new TaskServerError(
        'TASKAPP_ERR_INVALID_CONFIG',
        `SYNTH_CONTAINER_AUTH_MODE must be one of ${CONTAINER_AUTH_MODES.join(', ')} (got ${JSON.stringify(fromEnv.slice(0, 32))}).`,
      )
    }
    mode = (fromEnv as ContainerAuthMode | undefined) ?? 'required'
  }
  // Parsed even when disabled, so a bad key is reported at startup rather than when the mode changes.
  const keys = parseTrustedContainerKeys(input)
  if (mode === 'disabled') return undefined
  return {
    keys,
    mode,
    issuer: config?.issuer ?? nonBlank(env.SYNTH_CONTAINER_AUTH_ISSUER) ?? DEFAULT_CONTAINER_TOKEN_ISSUER,
    audience: config?.audience ?? DEFAULT_CONTAINER_TOKEN_AUDIENCE,
    clockToleranceMs: config?.clockToleranceMs ?? 30_000,
  }
}

/**
 * True for a loopback peer address (`127.0.0.0/8`, `::1`, `::ffff:127.x.x.x`): the address of the
 * socket itself (`req.socket.remoteAddress`), never a forwarded header.
 */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  return v4 === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4)
}
