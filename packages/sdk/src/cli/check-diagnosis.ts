/**
 * Why `taskapp check` failed, in words that name what actually happened: nothing listening, the
 * relay refusing a missing or a wrong worker token, the task app missing or refusing its key or
 * container token. Decided from the answer (status and error code, read from a body that may be
 * cut short) and from what the check itself sent.
 */
import type { CheckCommand } from './args'

/** Stable `reason` values of a failed check (`taskapp check --json`). */
export const CHECK_REASONS = [
  'not_listening',
  'no_answer',
  'worker_token_missing',
  'worker_token_invalid',
  'relay_error',
  'api_key_missing',
  'api_key_refused',
  'credential_missing',
  'credential_refused',
  'server_has_no_key',
  'not_found',
  'unhealthy',
  'bad_info',
] as const

/** One of {@link CHECK_REASONS}. */
export type CheckReason = (typeof CHECK_REASONS)[number]

/** A failure: the stable reason and the sentence printed after `✗`. */
export interface Diagnosis {
  readonly reason: CheckReason
  readonly message: string
}

/** Which credentials the check sent. */
export interface SentCredentials {
  /** `--api-key` (or its file / env), or an `X-API-Key` / `X-API-Keys` / `Authorization` header given with `-H`. */
  readonly apiKey: boolean
  /** `X-SynthTunnel-Worker-Token`, or an `Authorization` header given with `-H` (the relay reads a bearer as one). */
  readonly workerToken: boolean
  /** `X-Synth-Container-Authorization` given with `-H`. */
  readonly containerToken: boolean
}

/** What `cmd` sends. */
export function sentCredentials(cmd: Pick<CheckCommand, 'apiKey' | 'headers'>): SentCredentials {
  const names = new Set(Object.keys(cmd.headers).map((name) => name.toLowerCase()))
  return {
    apiKey:
      cmd.apiKey !== undefined ||
      names.has('x-api-key') ||
      names.has('x-api-keys') ||
      names.has('authorization'),
    workerToken: names.has('x-synthtunnel-worker-token') || names.has('authorization'),
    containerToken: names.has('x-synth-container-authorization'),
  }
}

/** A string field of a JSON body, found even when the body was cut short (probes keep 200 characters). */
function field(body: string | undefined, name: string): string | undefined {
  const match = new RegExp(`"${name}"\\s*:\\s*"((?:[^"\\\\]|\\\\.)*)"`).exec(body ?? '')
  if (match === null) return undefined
  try {
    return JSON.parse(`"${match[1]}"`) as string
  } catch {
    return match[1]
  }
}

const WORKER_TOKEN_HINT =
  "send the X-SynthTunnel-Worker-Token `taskapp serve` printed, with --header-file or -H 'X-SynthTunnel-Worker-Token: …'"
const API_KEY_HINT = 'pass it with --api-key-file, ENVIRONMENT_API_KEY or --api-key'

/** The relay's own answers (problem+json with a `TUNNEL_*` code). */
function relayDiagnosis(
  status: number,
  code: string,
  body: string | undefined,
  sent: SentCredentials,
): Diagnosis {
  if (code === 'TUNNEL_AUTH_REQUIRED') {
    return sent.workerToken
      ? {
          reason: 'worker_token_invalid',
          message: `the relay refused the worker token: it is not this tunnel's (HTTP ${status} ${code}); ${WORKER_TOKEN_HINT}`,
        }
      : {
          reason: 'worker_token_missing',
          message: `the relay refused: no worker token sent (HTTP ${status} ${code}); ${WORKER_TOKEN_HINT}`,
        }
  }
  const detail = field(body, 'detail')
  return {
    reason: 'relay_error',
    message: `the relay answered HTTP ${status} ${code}${detail === undefined ? '' : `: ${detail}`}`,
  }
}

/** The task app's auth answers: no key / a refused key, no credential / a refused one. */
function authDiagnosis(
  status: number,
  code: string,
  body: string | undefined,
  sent: SentCredentials,
): Diagnosis | undefined {
  const said = field(body, 'message')
  if (code === 'unauthorised' || code === 'unauthorized') {
    if (!sent.apiKey) {
      return {
        reason: 'api_key_missing',
        message: `no API key sent, and the task app requires one (HTTP ${status}); ${API_KEY_HINT}`,
      }
    }
    if (said?.startsWith('API key missing') === true) {
      return {
        reason: 'api_key_missing',
        message: `the task app got no API key although one was sent (HTTP ${status}): something in between dropped it`,
      }
    }
    return {
      reason: 'api_key_refused',
      message: `the task app refused the API key (HTTP ${status}): it is not one of the app's keys`,
    }
  }
  if (code === 'auth_missing') {
    const message =
      sent.apiKey || sent.containerToken
        ? `the task app got no API key or container token although one was sent (HTTP ${status}): something in between dropped it`
        : `no credential sent, and the task app requires a signed container token (X-Synth-Container-Authorization, which Synth's backend signs) or an API key (HTTP ${status})`
    return { reason: 'credential_missing', message }
  }
  if (code === 'auth_invalid') {
    return {
      reason: 'credential_refused',
      message: `the task app refused the credential sent (HTTP ${status})${said === undefined ? '' : `: ${said}`}`,
    }
  }
  if (code === 'missing_environment_api_key') {
    return {
      reason: 'server_has_no_key',
      message: `the task app has no API key configured (HTTP ${status}): set ENVIRONMENT_API_KEY where it runs`,
    }
  }
  return undefined
}

/**
 * Why an HTTP answer from `path` (`/health`, `/info`) is not the one wanted.
 *
 * @example
 * ```ts
 * diagnoseAnswer('/health', 400, '{"detail":{"error":{"code":"unauthorised"}}}', sentCredentials(cmd))
 * // { reason: 'api_key_missing', message: 'no API key sent, and the task app requires one (HTTP 400); ...' }
 * ```
 */
export function diagnoseAnswer(
  path: string,
  status: number,
  body: string | undefined,
  sent: SentCredentials,
): Diagnosis {
  const code = field(body, 'code')
  if (code?.startsWith('TUNNEL_') === true) return relayDiagnosis(status, code, body, sent)
  const auth = code === undefined ? undefined : authDiagnosis(status, code, body, sent)
  if (auth !== undefined) return auth
  if (status === 404) return { reason: 'not_found', message: `the app has no ${path} route (HTTP 404)` }
  if (status === 401 || status === 403) {
    return {
      reason: sent.apiKey ? 'credential_refused' : 'credential_missing',
      message: `${path} answered HTTP ${status}: ${sent.apiKey ? 'the credentials sent were refused' : 'credentials needed, none sent'}`,
    }
  }
  const notHealthy = status >= 200 && status < 300 ? ' with healthy: false' : ''
  const said = code === undefined ? '' : ` (${code})`
  return { reason: 'unhealthy', message: `${path} answered HTTP ${status}${said}${notHealthy}` }
}

/**
 * Why no answer came from `url`: a refused connection means nothing is listening there.
 *
 * @example
 * ```ts
 * diagnoseNoAnswer('http://127.0.0.1:9/health', 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9')
 * // { reason: 'not_listening', message: 'nothing is listening at 127.0.0.1:9 (connection refused)' }
 * ```
 */
export function diagnoseNoAnswer(url: string, error: string): Diagnosis {
  const { host } = new URL(url)
  if (/ECONNREFUSED/.test(error)) {
    return { reason: 'not_listening', message: `nothing is listening at ${host} (connection refused)` }
  }
  return { reason: 'no_answer', message: `no answer from ${host}: ${error}` }
}
