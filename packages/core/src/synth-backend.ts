/**
 * Where Synth's backend is: the one resolver every package that talks to Synth uses (the
 * SynthTunnel agent, `InProcessTaskApp`'s default relay, jobs). It reads exactly two environment
 * variables and never writes any.
 */
import { CoreError, CoreErrorCode } from './errors'
import { redact } from './redact'

/** Synth's production backend, the default. */
export const SYNTH_PROD_BACKEND_URL = 'https://api.usesynth.ai'
/** Synth's development backend (`SYNTH_BACKEND_URL_OVERRIDE=dev`). */
export const SYNTH_DEV_BACKEND_URL = 'https://api-dev.usesynth.ai'
/** A backend on this machine (`SYNTH_BACKEND_URL_OVERRIDE=local`). */
export const SYNTH_LOCAL_BACKEND_URL = 'http://localhost:8000'

/**
 * The only environment variables {@link resolveSynthBackendUrl} reads, in precedence order. Names
 * of other tools (`BACKEND_BASE_URL`, `NEXT_PUBLIC_API_URL`, ...) are never read: they would send
 * the Synth API key to whatever they point at.
 */
export const SYNTH_BACKEND_ENV_NAMES = ['SYNTH_BACKEND_URL_OVERRIDE', 'SYNTH_BACKEND_URL'] as const

/** Where a resolved backend URL came from. */
export type SynthBackendSource = 'option' | (typeof SYNTH_BACKEND_ENV_NAMES)[number] | 'default'

/** The result of {@link resolveSynthBackendUrl}. */
export interface ResolvedSynthBackend {
  /** Base URL without a trailing `/` or `/api`; clients append `/api/v1/...`. */
  readonly url: string
  /** What decided it. */
  readonly source: SynthBackendSource
}

/** Options of {@link resolveSynthBackendUrl}. */
export interface ResolveSynthBackendOptions {
  /**
   * An explicit backend URL (http or https); wins over the environment, which is then not read.
   * @default undefined (read the environment)
   */
  readonly backendUrl?: string | undefined
  /**
   * Where `SYNTH_BACKEND_URL_OVERRIDE` and `SYNTH_BACKEND_URL` are read; nothing else is read from
   * it and nothing is written to it.
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>
}

/** The shorthands `SYNTH_BACKEND_URL_OVERRIDE` takes (synth-ai's), lower-cased. */
const SHORTHANDS: Readonly<Record<string, string>> = {
  local: SYNTH_LOCAL_BACKEND_URL,
  localhost: SYNTH_LOCAL_BACKEND_URL,
  dev: SYNTH_DEV_BACKEND_URL,
  development: SYNTH_DEV_BACKEND_URL,
  staging: SYNTH_DEV_BACKEND_URL,
  prod: SYNTH_PROD_BACKEND_URL,
  production: SYNTH_PROD_BACKEND_URL,
}

/**
 * A bad value, shown without leaking a secret pasted into the wrong variable: a short word (a
 * mistyped shorthand) as is, a URL with another scheme as its scheme and host only, anything
 * else as a 4-character prefix.
 */
function shown(value: string): string {
  if (value === '') return '""'
  if (/^[a-z-]{1,16}$/i.test(value)) return JSON.stringify(value)
  try {
    const url = new URL(value)
    if (url.host !== '') return JSON.stringify(`${url.protocol}//${url.host}`)
  } catch {
    // not a URL: fall through to the prefix
  }
  return `${JSON.stringify(redact(value))} (${value.length} characters)`
}

/** `value` as a base URL without trailing `/` and `/api`, or undefined when not http(s). */
function httpBase(value: string): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
  return url.href
    .replace(/\/+$/, '')
    .replace(/\/api$/, '')
    .replace(/\/+$/, '')
}

function invalid(where: string, expected: string, value: string): CoreError {
  return new CoreError(
    CoreErrorCode.InvalidSynthBackendUrl,
    `${where} must be ${expected}; got ${shown(value)}.`,
  )
}

/** An environment value, or undefined when unset or blank. */
function envValue(env: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  const value = env[name]?.trim()
  return value ? value : undefined
}

/**
 * The Synth backend base URL to talk to, and where it came from. In order:
 *
 * 1. the `backendUrl` option (an http(s) URL);
 * 2. `SYNTH_BACKEND_URL_OVERRIDE`: synth-ai's shorthands `local` / `localhost`
 *    ({@link SYNTH_LOCAL_BACKEND_URL}), `dev` / `development` / `staging`
 *    ({@link SYNTH_DEV_BACKEND_URL}), `prod` / `production` ({@link SYNTH_PROD_BACKEND_URL}),
 *    any case, or an http(s) URL;
 * 3. `SYNTH_BACKEND_URL` (an http(s) URL);
 * 4. {@link SYNTH_PROD_BACKEND_URL}.
 *
 * Values are trimmed and lose a trailing `/` and then a trailing `/api`; a blank variable counts
 * as unset. Only the two names of {@link SYNTH_BACKEND_ENV_NAMES} are read, and the environment is
 * never written. A value that is neither a shorthand nor an http(s) URL throws a {@link CoreError}
 * with code `TASKAPP_ERR_INVALID_SYNTH_BACKEND_URL` naming the variable (the value is shown only
 * when it cannot be a secret).
 *
 * @example
 * ```ts
 * import { resolveSynthBackendUrl } from '@taskapp/core'
 *
 * resolveSynthBackendUrl({ env: {} }) // { url: 'https://api.usesynth.ai', source: 'default' }
 * resolveSynthBackendUrl({ env: { SYNTH_BACKEND_URL_OVERRIDE: 'dev' } }) // { url: 'https://api-dev.usesynth.ai', source: 'SYNTH_BACKEND_URL_OVERRIDE' }
 * resolveSynthBackendUrl({ env: { SYNTH_BACKEND_URL: 'http://127.0.0.1:8787/api/' } }) // { url: 'http://127.0.0.1:8787', source: 'SYNTH_BACKEND_URL' }
 * ```
 */
export function resolveSynthBackendUrl(options: ResolveSynthBackendOptions = {}): ResolvedSynthBackend {
  if (options.backendUrl !== undefined) {
    const raw = typeof options.backendUrl === 'string' ? options.backendUrl.trim() : ''
    const url = httpBase(raw)
    if (url === undefined) {
      throw invalid(
        'backendUrl',
        'an http(s) URL such as https://api.usesynth.ai',
        String(options.backendUrl),
      )
    }
    return { url, source: 'option' }
  }
  const env = options.env ?? process.env
  const override = envValue(env, 'SYNTH_BACKEND_URL_OVERRIDE')
  if (override !== undefined) {
    const url = SHORTHANDS[override.toLowerCase()] ?? httpBase(override)
    if (url === undefined) {
      throw invalid('SYNTH_BACKEND_URL_OVERRIDE', 'local, dev, prod or an http(s) URL', override)
    }
    return { url, source: 'SYNTH_BACKEND_URL_OVERRIDE' }
  }
  const backendUrl = envValue(env, 'SYNTH_BACKEND_URL')
  if (backendUrl !== undefined) {
    const url = httpBase(backendUrl)
    if (url === undefined) {
      throw invalid(
        'SYNTH_BACKEND_URL',
        'an http(s) URL such as https://api.usesynth.ai (for the shorthands local, dev, prod set SYNTH_BACKEND_URL_OVERRIDE)',
        backendUrl,
      )
    }
    return { url, source: 'SYNTH_BACKEND_URL' }
  }
  return { url: SYNTH_PROD_BACKEND_URL, source: 'default' }
}
