/**
 * The `tunnel` option: a {@link TunnelBackend}, or a plain spec naming a mode and its settings.
 * One table ({@link TUNNEL_SPEC_KEYS}) says which keys each mode takes; the old flat options
 * (`tunnelMode`, `relayUrl`, ...) are mapped onto a spec here, with a deprecation warning.
 */
import { messageOf, relayApiKeyFromEnv, RELAY_URL_ENV, resolveSynthBackendUrl } from '@taskapp/core'
import type { TunnelBackend } from '@taskapp/core'
import { envString, httpUrl, invalid, show, specInstall, specString } from './spec-values'
import type { CloudflaredInstallSpec } from './spec-values'

export type { CloudflaredInstallSpec } from './spec-values'

/** How the app is reached from outside. */
export type TunnelMode = 'synthtunnel' | 'quick' | 'named' | 'local' | 'preconfigured'

/** The tunnel modes, in documentation order. */
export const TUNNEL_MODES: readonly TunnelMode[] = ['synthtunnel', 'quick', 'named', 'local', 'preconfigured']

/**
 * A tunnel named by mode, with that mode's settings. Unset settings fall back to the environment
 * (see the README's environment table).
 *
 * @example
 * ```ts
 * await InProcessTaskApp.start({ configFactory: buildConfig, tunnel: { mode: 'synthtunnel', relayUrl: 'http://127.0.0.1:8787' } })
 * await InProcessTaskApp.start({ configFactory: buildConfig, tunnel: { mode: 'quick', install: true } })
 * await InProcessTaskApp.start({ configFactory: buildConfig, tunnel: { mode: 'local' } })
 * ```
 */
export type TunnelSpec =
  | {
      readonly mode: 'synthtunnel'
      /**
       * Base URL of the relay.
       * @default process.env.TASKAPP_RELAY_URL (a self-hosted relay); else, when a relay API key is
       * set, Synth's hosted relay: `resolveSynthBackendUrl()` of `@taskapp/core`
       * (`SYNTH_BACKEND_URL_OVERRIDE`, then `SYNTH_BACKEND_URL`, else `https://api.usesynth.ai`)
       */
      readonly relayUrl?: string
      /**
       * API key for the relay (Synth's API key for Synth's hosted relay).
       * @default with a relay URL, process.env.TASKAPP_RELAY_API_KEY, then SYNTH_API_KEY; for Synth's
       * hosted relay only process.env.SYNTH_API_KEY (a self-hosted relay's key never goes to Synth)
       */
      readonly relayApiKey?: string
    }
  | {
      readonly mode: 'quick'
      /** Path of the `cloudflared` binary. @default found by `@taskapp/tunnel-cloudflare` */
      readonly cloudflaredPath?: string
      /**
       * When `cloudflared` is not found, download a checksum-verified copy into the cache: `true`
       * (the latest release), or a {@link CloudflaredInstallSpec} pinning the version and checksum.
       * @default false
       */
      readonly install?: boolean | CloudflaredInstallSpec
    }
  | {
      readonly mode: 'named'
      /** The tunnel token. @default process.env.CLOUDFLARE_TUNNEL_TOKEN */
      readonly token?: string
      /** The public hostname routed to the tunnel. @default process.env.CLOUDFLARE_TUNNEL_HOSTNAME */
      readonly hostname?: string
      /** Path of the `cloudflared` binary. @default found by `@taskapp/tunnel-cloudflare` */
      readonly cloudflaredPath?: string
      /** As for `quick`: download a verified `cloudflared` when it is not found. @default false */
      readonly install?: boolean | CloudflaredInstallSpec
    }
  | { readonly mode: 'local' }
  | {
      readonly mode: 'preconfigured'
      /**
       * The public URL (trailing slash removed).
       * @default process.env.TASKAPP_URL, then synth-ai's SYNTH_TASK_APP_URL and SYNTH_CONTAINER_URL
       */
      readonly url?: string
      /** Name of a header callers must send (goes into `app.headers` with `authToken`). */
      readonly authHeader?: string
      /** Value of `authHeader`. */
      readonly authToken?: string
    }

/** The keys each mode's spec takes besides `mode`: the one table validation and docs read. */
export const TUNNEL_SPEC_KEYS = {
  synthtunnel: ['relayUrl', 'relayApiKey'],
  quick: ['cloudflaredPath', 'install'],
  named: ['token', 'hostname', 'cloudflaredPath', 'install'],
  local: [],
  preconfigured: ['url', 'authHeader', 'authToken'],
} as const satisfies {
  readonly [M in TunnelMode]: readonly Exclude<keyof Extract<TunnelSpec, { mode: M }>, 'mode'>[]
}

/** A spec after validation, with environment fallbacks applied and required settings present. */
export type ResolvedTunnelSpec =
  | { readonly mode: 'synthtunnel'; readonly relayUrl: string; readonly relayApiKey: string | undefined }
  | {
      readonly mode: 'quick'
      readonly cloudflaredPath: string | undefined
      readonly install: boolean | CloudflaredInstallSpec
    }
  | {
      readonly mode: 'named'
      readonly token: string
      readonly hostname: string
      readonly cloudflaredPath: string | undefined
      readonly install: boolean | CloudflaredInstallSpec
    }
  | { readonly mode: 'local' }
  | {
      readonly mode: 'preconfigured'
      readonly url: string
      readonly headers: Readonly<Record<string, string>> | undefined
    }

/** The `tunnel` option after validation. */
export type ResolvedTunnel = { readonly mode: 'custom'; readonly backend: TunnelBackend } | ResolvedTunnelSpec

/**
 * The flat options of earlier versions, each with the spec key it maps to.
 * @deprecated since 0.1: pass `tunnel: { mode, ... }` instead; removed in the next minor.
 */
export const DEPRECATED_TUNNEL_KEYS = {
  tunnelMode: 'mode',
  preconfiguredUrl: 'url',
  preconfiguredAuthHeader: 'authHeader',
  preconfiguredAuthToken: 'authToken',
  relayUrl: 'relayUrl',
  relayApiKey: 'relayApiKey',
  cloudflaredPath: 'cloudflaredPath',
  namedTunnelToken: 'token',
  namedTunnelHostname: 'hostname',
} as const

/** Stable code of the deprecation warning emitted for the flat tunnel options. */
export const FLAT_TUNNEL_OPTIONS_WARNING = 'TASKAPP_DEP_FLAT_TUNNEL_OPTIONS'

const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
let warned = false

function isBackend(value: object): value is TunnelBackend {
  return 'open' in value || 'name' in value
}

function warnFlatKeys(options: Record<string, unknown>): void {
  if (warned) return
  warned = true
  const given = Object.keys(DEPRECATED_TUNNEL_KEYS).filter((key) => options[key] !== undefined)
  process.emitWarning(
    `InProcessTaskApp options ${given.join(', ')} are deprecated: pass tunnel: { mode, ... } instead ` +
      "(e.g. tunnel: { mode: 'synthtunnel', relayUrl }); see the @taskapp/in-process README.",
    { type: 'DeprecationWarning', code: FLAT_TUNNEL_OPTIONS_WARNING },
  )
}

/** The flat options given, as a spec; warns once per process that they are deprecated. */
function specFromFlatKeys(options: Record<string, unknown>): Record<string, unknown> | undefined {
  if (!Object.keys(DEPRECATED_TUNNEL_KEYS).some((key) => options[key] !== undefined)) return undefined
  warnFlatKeys(options)
  const spec: Record<string, unknown> = { mode: options.tunnelMode ?? 'synthtunnel' }
  const mode = spec.mode as TunnelMode
  const keys: readonly string[] = (TUNNEL_SPEC_KEYS as Record<string, readonly string[]>)[mode] ?? []
  for (const [flat, key] of Object.entries(DEPRECATED_TUNNEL_KEYS)) {
    // Flat keys that do not apply to the mode were ignored before; they still are.
    if (key !== 'mode' && options[flat] !== undefined && keys.includes(key)) spec[key] = options[flat]
  }
  // Before, a lone header or token was refused in any mode; keep refusing it.
  if ((options.preconfiguredAuthHeader === undefined) !== (options.preconfiguredAuthToken === undefined)) {
    throw invalid('preconfiguredAuthHeader and preconfiguredAuthToken go together: pass both or neither.')
  }
  return spec
}

function resolveSpec(spec: Record<string, unknown>, where: string, defaulted = false): ResolvedTunnelSpec {
  const mode = spec.mode
  if (typeof mode !== 'string' || !(TUNNEL_MODES as readonly string[]).includes(mode)) {
    const expected = `one of ${TUNNEL_MODES.map((m) => `'${m}'`).join(', ')}`
    throw invalid(`Unknown ${where}.mode ${show(mode)}: expected ${expected}.`, {
      option: `${where}.mode`,
      expected,
    })
  }
  const allowed: readonly string[] = TUNNEL_SPEC_KEYS[mode as TunnelMode]
  const extra = Object.keys(spec).filter((key) => key !== 'mode' && !allowed.includes(key))
  if (extra.length > 0) {
    throw invalid(
      `Unknown ${where} key${extra.length > 1 ? 's' : ''} ${extra.join(', ')} for mode '${mode}': ` +
        (allowed.length > 0 ? `it takes ${allowed.join(', ')}.` : 'it takes no other keys.'),
      { option: `${where}.${extra[0]}` },
    )
  }
  const str = (key: string) => specString(spec, key, where)
  switch (mode as TunnelMode) {
    case 'local':
      return { mode: 'local' }
    case 'synthtunnel':
      return resolveSynthTunnel(str, where, defaulted)
    case 'quick':
      return { mode: 'quick', cloudflaredPath: str('cloudflaredPath'), install: specInstall(spec, where) }
    case 'named': {
      const token = str('token') ?? envString('CLOUDFLARE_TUNNEL_TOKEN')
      const hostname = str('hostname') ?? envString('CLOUDFLARE_TUNNEL_HOSTNAME')
      if (token === undefined || hostname === undefined) {
        throw invalid(
          "tunnel mode 'named' needs a tunnel token and its hostname: pass tunnel: { mode: 'named', token, hostname } " +
            '(or set CLOUDFLARE_TUNNEL_TOKEN and CLOUDFLARE_TUNNEL_HOSTNAME).',
          token === undefined
            ? { option: `${where}.token`, env: ['CLOUDFLARE_TUNNEL_TOKEN'] }
            : { option: `${where}.hostname`, env: ['CLOUDFLARE_TUNNEL_HOSTNAME'] },
        )
      }
      return {
        mode: 'named',
        token,
        hostname,
        cloudflaredPath: str('cloudflaredPath'),
        install: specInstall(spec, where),
      }
    }
    case 'preconfigured':
      return resolvePreconfigured(str, where)
  }
}

/**
 * The `synthtunnel` spec: `relayUrl`, else `TASKAPP_RELAY_URL` (a self-hosted relay, whose key is
 * `relayApiKey`, else `TASKAPP_RELAY_API_KEY`, else `SYNTH_API_KEY`), else, when a relay key is
 * known (`relayApiKey` or `SYNTH_API_KEY` only), Synth's hosted relay as `@taskapp/core`'s
 * `resolveSynthBackendUrl` finds it (`SYNTH_BACKEND_URL_OVERRIDE`, `SYNTH_BACKEND_URL`, production).
 */
function resolveSynthTunnel(
  str: (key: string) => string | undefined,
  where: string,
  defaulted: boolean,
): ResolvedTunnelSpec {
  const relayUrl = str('relayUrl') ?? envString(RELAY_URL_ENV)
  // A self-hosted relay's key (TASKAPP_RELAY_API_KEY) is read only when there is a relay URL.
  const relayApiKey =
    str('relayApiKey') ?? relayApiKeyFromEnv(process.env, { selfHosted: relayUrl !== undefined })?.value
  if (relayUrl !== undefined) {
    const option = `${where}.relayUrl`
    return {
      mode: 'synthtunnel',
      relayUrl: httpUrl(option, relayUrl, { option, env: ['TASKAPP_RELAY_URL'] }),
      relayApiKey,
    }
  }
  if (relayApiKey === undefined) {
    throw invalid(
      `tunnel mode 'synthtunnel'${defaulted ? ' (the default)' : ''} needs a relay and a key: set SYNTH_API_KEY for Synth's hosted relay ` +
        '(SYNTH_BACKEND_URL_OVERRIDE or SYNTH_BACKEND_URL pick another Synth backend), or set TASKAPP_RELAY_URL ' +
        "(or pass tunnel: { mode: 'synthtunnel', relayUrl, relayApiKey }) for a self-hosted relay. " +
        "For no tunnel at all, pass tunnel: { mode: 'local' }.",
      { option: `${where}.relayApiKey`, env: ['SYNTH_API_KEY', 'TASKAPP_RELAY_URL'] },
    )
  }
  try {
    return { mode: 'synthtunnel', relayUrl: resolveSynthBackendUrl().url, relayApiKey }
  } catch (err) {
    throw invalid(messageOf(err), {
      cause: err,
      option: `${where}.relayUrl`,
      env: ['SYNTH_BACKEND_URL_OVERRIDE', 'SYNTH_BACKEND_URL'],
    })
  }
}

/** Environment names of the preconfigured URL, first set wins: taskapp's, then synth-ai's two generations. */
export const PRECONFIGURED_URL_ENV = ['TASKAPP_URL', 'SYNTH_TASK_APP_URL', 'SYNTH_CONTAINER_URL'] as const

/** The `preconfigured` spec: its URL (or {@link PRECONFIGURED_URL_ENV}) and the optional auth header pair. */
function resolvePreconfigured(str: (key: string) => string | undefined, where: string): ResolvedTunnelSpec {
  const fromEnv = PRECONFIGURED_URL_ENV.find((name) => envString(name) !== undefined)
  const url = str('url') ?? (fromEnv === undefined ? undefined : envString(fromEnv))
  if (url === undefined) {
    throw invalid(
      "tunnel mode 'preconfigured' needs a URL: pass tunnel: { mode: 'preconfigured', url } or set TASKAPP_URL " +
        '(synth-ai names SYNTH_TASK_APP_URL and SYNTH_CONTAINER_URL are read too).',
      { option: `${where}.url`, env: PRECONFIGURED_URL_ENV },
    )
  }
  const authHeader = str('authHeader')
  const authToken = str('authToken')
  if ((authHeader === undefined) !== (authToken === undefined)) {
    throw invalid(`${where}.authHeader and ${where}.authToken go together: pass both or neither.`, {
      option: `${where}.${authHeader === undefined ? 'authHeader' : 'authToken'}`,
    })
  }
  if (authHeader !== undefined && !HEADER_NAME_RE.test(authHeader)) {
    throw invalid(
      `Invalid ${where}.authHeader ${JSON.stringify(authHeader)}: expected an HTTP header name.`,
      {
        option: `${where}.authHeader`,
        expected: 'an HTTP header name',
      },
    )
  }
  return {
    mode: 'preconfigured',
    url: httpUrl(str('url') === undefined && fromEnv !== undefined ? fromEnv : `${where}.url`, url, {
      option: `${where}.url`,
      env: PRECONFIGURED_URL_ENV,
    }),
    headers: authHeader !== undefined && authToken !== undefined ? { [authHeader]: authToken } : undefined,
  }
}

/**
 * Validates the `tunnel` option (a backend or a spec) or, failing that, the deprecated flat
 * options, and applies environment fallbacks. Default: `{ mode: 'synthtunnel' }`.
 * @internal
 */
export function resolveTunnelOption(options: Record<string, unknown>): ResolvedTunnel {
  const value = options.tunnel
  if (value === undefined) {
    const flat = specFromFlatKeys(options)
    return flat === undefined
      ? resolveSpec({ mode: 'synthtunnel' }, 'tunnel', true)
      : resolveSpec(flat, 'tunnel')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(
      `Invalid tunnel ${show(value)}: expected a TunnelBackend ({ name, open(target, { signal }) }) or a spec such as { mode: 'local' }.`,
    )
  }
  if ('mode' in value) {
    const flat = Object.keys(DEPRECATED_TUNNEL_KEYS).filter((key) => options[key] !== undefined)
    if (flat.length > 0) {
      throw invalid(
        `Pass the tunnel one way: tunnel: { mode, ... }, or the deprecated ${flat.join(', ')}; not both.`,
      )
    }
    return resolveSpec(value, 'tunnel')
  }
  if (isBackend(value) && typeof value.open === 'function' && typeof value.name === 'string') {
    // As before, a backend wins over the flat options, which are not checked.
    if (Object.keys(DEPRECATED_TUNNEL_KEYS).some((key) => options[key] !== undefined)) warnFlatKeys(options)
    return { mode: 'custom', backend: value }
  }
  throw invalid(
    "Invalid tunnel: expected a TunnelBackend ({ name: string, open(target, { signal }) }) or a spec such as { mode: 'local' }.",
  )
}
