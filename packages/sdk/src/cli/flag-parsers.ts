/**
 * The values the `taskapp` CLI's flags take: the enums, the defaults, and the parsers (raw string
 * in, value out, or a usage error naming the flag), plus the flags several commands share. The
 * tables themselves are in `flags.ts` and `job-flags.ts`.
 */
import { parseTrustedContainerKeys, type ContainerAuthMode } from '@taskapp/task-server'
import type { TunnelMode } from '@taskapp/in-process'
import { option, toggle, type Flag, type FlagParser } from './flag-table'

/** Tunnel modes `taskapp serve --tunnel` accepts (the `InProcessTaskApp` modes), in help order. */
export const TUNNEL_MODES = [
  'local',
  'quick',
  'named',
  'synthtunnel',
  'preconfigured',
] as const satisfies readonly TunnelMode[]
/** One of {@link TUNNEL_MODES}. */
export type TunnelModeFlag = (typeof TUNNEL_MODES)[number]

/** Container-auth modes `--container-auth` accepts (task-server's `ContainerAuthMode`). */
export const CONTAINER_AUTH_MODES = [
  'required',
  'optional_local',
  'disabled',
] as const satisfies readonly ContainerAuthMode[]

/** Port-conflict policies `--on-port-conflict` accepts. */
export const PORT_CONFLICT_POLICIES = ['next', 'error', 'kill'] as const
/** Log levels `--log-level` accepts. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** Defaults, documented in the README and the help texts. */
export const DEFAULTS = {
  servePort: 8114,
  host: '127.0.0.1',
  relayPort: 8787,
  checkTimeoutMs: 5_000,
} as const

// ---- parsers: raw string in, value out, or a usage error naming the flag

/** A port: 0 (any free one) or 1024-65535. */
export const port: FlagParser<number> = (raw, ctx) => {
  const expected = 'must be 0 (any free port) or an integer in [1024, 65535]'
  if (!/^\d+$/.test(raw.trim())) throw ctx.fail(`${expected}, got "${raw}".`)
  const n = Number(raw)
  if ((n !== 0 && n < 1024) || n > 65_535) throw ctx.fail(`${expected}, got ${n}.`)
  return n
}

/** An absolute http(s) URL, trailing slashes removed. */
export const httpUrl: FlagParser<string> = (raw, ctx) => {
  const protocols = ['http', 'https']
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw ctx.fail(`must be an absolute URL (${protocols.join(' or ')}), got "${raw}".`)
  }
  if (!protocols.includes(url.protocol.replace(/:$/, ''))) {
    throw ctx.fail(`must use ${protocols.join(' or ')}, got "${url.protocol}".`)
  }
  return raw.replace(/\/+$/, '')
}

/** One of `allowed`, compared after `normalize`. */
export function oneOf<T extends string>(
  allowed: readonly T[],
  normalize: (raw: string) => string = (raw) => raw,
): FlagParser<T> {
  return (raw, ctx) => {
    const value = normalize(raw)
    if (!(allowed as readonly string[]).includes(value)) {
      throw ctx.fail(`must be one of ${allowed.join(', ')}, got "${raw}".`)
    }
    return value as T
  }
}

/** An HTTP header, `Name: value`. */
export const header: FlagParser<readonly [string, string]> = (raw, ctx) => {
  const colon = raw.indexOf(':')
  const name = colon > 0 ? raw.slice(0, colon).trim() : ''
  if (colon <= 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
    throw ctx.fail(`must look like "Name: value", got "${raw}".`)
  }
  return [name, raw.slice(colon + 1).trim()]
}

/**
 * Whether a raw `Name: value` header carries a credential, judged by its name: a worker token or
 * any `*token*`, `Authorization` / `Proxy-Authorization`, `X-API-Key`, `Cookie`, `*secret*`,
 * `*password*`.
 */
export function credentialHeader(raw: string): boolean {
  const colon = raw.indexOf(':')
  return /token|authorization|api-?key|cookie|secret|password/i.test(colon < 0 ? raw : raw.slice(0, colon))
}

/** A positive whole number of milliseconds. */
export const milliseconds: FlagParser<number> = (raw, ctx) => {
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    throw ctx.fail(`must be a positive number of milliseconds, got "${raw}".`)
  }
  return Number(raw)
}

/** Any string as given (tokens, hostnames, keys). */
export const text: FlagParser<string> = (raw) => raw

/** Trusted container public keys, `kid:base64,base64,...`, checked as the task server reads them. */
export const containerKeys: FlagParser<string> = (raw, ctx) => {
  try {
    if (parseTrustedContainerKeys(raw).length === 0) throw new Error('no key in it')
  } catch (err) {
    throw ctx.fail(
      `must be a comma list of Ed25519 public keys, kid:base64 or base64 (32 bytes each): ${(err as Error).message}`,
    )
  }
  return raw
}

/** A non-blank key. */
export const key: FlagParser<string> = (raw, ctx) => {
  if (raw.trim() === '') throw ctx.fail('must not be empty.')
  return raw
}

/** A Redis URL: `redis://`, `rediss://` or `unix:///path/to/redis.sock`. */
export const redisUrl: FlagParser<string> = (raw, ctx) => {
  if (!/^(rediss?:\/\/.+|unix:\/\/\/.+)$/.test(raw.trim()))
    throw ctx.fail('must be a redis://, rediss:// or unix:///path URL.')
  return raw.trim()
}

/** A non-blank file path. */
export const filePath: FlagParser<string> = (raw, ctx) => {
  if (raw.trim() === '') throw ctx.fail('must be a file path, got an empty value.')
  return raw
}

// ---- the flags shared by several commands

export function logLevelFlag(fallback: LogLevel, more = ''): Flag<LogLevel> {
  return option({
    name: 'log-level',
    value: '<level>',
    help: `${LOG_LEVELS.join(' | ')}${more}`,
    env: ['TASKAPP_LOG_LEVEL'],
    default: fallback,
    parse: oneOf(LOG_LEVELS, (raw) => raw.toLowerCase()),
  })
}

export const VERBOSE = toggle({ name: 'verbose', short: 'v', help: 'same as --log-level debug' })
