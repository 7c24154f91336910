/**
 * Every flag of the `taskapp` CLI, one table per command, one entry per flag. An entry's key is
 * where its value goes: a field of the command (`port`), or a key of the `InProcessTaskApp`
 * tunnel spec (`tunnel.relayUrl`). `parseArgs`, the environment fallbacks and `--help` are
 * derived from these tables (see `flag-table.ts`); rules between flags live in `args.ts`.
 */
import { ENVIRONMENT_API_KEY_ENV_NAMES, RELAY_API_KEY_ENV_NAMES, RELAY_URL_ENV } from '@taskapp/core'
import type { TunnelMode, TunnelSpec } from '@taskapp/in-process'
import { parseTrustedContainerKeys, type ContainerAuthMode } from '@taskapp/task-server'
import type { CheckCommand, InitCommand, RelayCommand, ServeCommand } from './args'
import type { DevBackendCommand, OptimizeCommand } from './job-args'
import { list, option, toggle, type Flag, type FlagParser } from './flag-table'

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
const containerKeys: FlagParser<string> = (raw, ctx) => {
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
const key: FlagParser<string> = (raw, ctx) => {
  if (raw.trim() === '') throw ctx.fail('must not be empty.')
  return raw
}

/** A non-blank file path. */
const filePath: FlagParser<string> = (raw, ctx) => {
  if (raw.trim() === '') throw ctx.fail('must be a file path, got an empty value.')
  return raw
}

// ---- the flags shared by several commands

function logLevelFlag(fallback: LogLevel, more = ''): Flag<LogLevel> {
  return option({
    name: 'log-level',
    value: '<level>',
    help: `${LOG_LEVELS.join(' | ')}${more}`,
    env: ['TASKAPP_LOG_LEVEL'],
    default: fallback,
    parse: oneOf(LOG_LEVELS, (raw) => raw.toLowerCase()),
  })
}

const VERBOSE = toggle({ name: 'verbose', short: 'v', help: 'same as --log-level debug' })

// ---- the tables

/** A value of the tunnel spec's `key`, in whichever mode has that key. */
type SpecValue<K extends PropertyKey> = TunnelSpec extends infer S
  ? S extends unknown
    ? K extends keyof S
      ? S[K]
      : never
    : never
  : never
type SpecKey = TunnelSpec extends infer S ? (S extends unknown ? keyof S : never) : never

/** Targets a serve flag may write: the command's fields, the tunnel spec's keys, and `verbose`. */
type ServeTargets = {
  readonly [
    K in Exclude<keyof ServeCommand, 'command' | 'file' | 'tunnel' | 'apiKeyFrom' | 'containerAuthFrom'>
  ]: Flag<ServeCommand[K]>
} & { readonly [K in SpecKey as `tunnel.${K}`]?: Flag<SpecValue<K> | undefined> } & {
  readonly verbose?: Flag<boolean>
}

/**
 * The flags of `taskapp serve`, in help order. `tunnel.*` targets are keys of the
 * `InProcessTaskApp` tunnel spec; only the ones the chosen mode takes are kept.
 */
export const SERVE_FLAGS = {
  port: option({
    name: 'port',
    short: 'p',
    value: '<n>',
    help: 'port to bind, 1024-65535 or 0 for any (next free one if busy)',
    env: ['TASKAPP_PORT'],
    default: DEFAULTS.servePort,
    parse: port,
  }),
  host: option({
    name: 'host',
    value: '<host>',
    help: 'interface to bind; loopback only unless --allow-non-loopback',
    default: DEFAULTS.host,
    parse: key,
  }),
  allowNonLoopback: toggle({
    name: 'allow-non-loopback',
    help: 'allow a --host that is not loopback (e.g. 0.0.0.0)',
  }),
  'tunnel.mode': option({
    name: 'tunnel',
    short: 't',
    value: '<mode>',
    help: TUNNEL_MODES.join(' | '),
    env: ['TASKAPP_TUNNEL'],
    defaultHelp: 'synthtunnel when a relay URL is set, else local',
    parse: oneOf(TUNNEL_MODES),
  }),
  'tunnel.relayUrl': option({
    name: 'relay-url',
    value: '<url>',
    help:
      'relay (SynthTunnel backend) base URL, e.g. one started with `taskapp relay`; without one, ' +
      "Synth's: SYNTH_BACKEND_URL_OVERRIDE (local, dev, prod or a URL), then SYNTH_BACKEND_URL, else https://api.usesynth.ai",
    env: [RELAY_URL_ENV],
    defaultHelp: "Synth's hosted relay, with --tunnel synthtunnel and a key",
    parse: httpUrl,
  }),
  'tunnel.relayApiKey': option({
    name: 'relay-api-key',
    value: '<key>',
    help: "key for creating relay leases; for Synth's hosted relay only the flag (or its file) or SYNTH_API_KEY",
    env: RELAY_API_KEY_ENV_NAMES.selfHosted,
    parse: text,
    secret: true,
  }),
  apiKey: option({
    name: 'api-key',
    value: '<key>',
    help: "the task app's own API key (X-API-Key)",
    env: ENVIRONMENT_API_KEY_ENV_NAMES,
    defaultHelp: 'generated and printed',
    parse: text,
    secret: true,
  }),
  containerKeys: option({
    name: 'container-keys',
    value: '<keys>',
    help:
      'trusted Synth container public keys (kid:base64,...): verify the signed tokens of the newer ' +
      'Synth generation (X-Synth-Container-Authorization); the backend signs its own for each call',
    env: ['SYNTH_CONTAINER_TRUSTED_PUBKEYS'],
    defaultHelp: 'none: no token check',
    parse: containerKeys,
  }),
  containerAuthMode: option({
    name: 'container-auth',
    value: '<mode>',
    help: `${CONTAINER_AUTH_MODES.join(' | ')}; optional_local only with --tunnel local`,
    env: ['SYNTH_CONTAINER_AUTH_MODE'],
    defaultHelp: 'required when keys are set',
    parse: oneOf(CONTAINER_AUTH_MODES, (raw) => raw.trim().toLowerCase()),
  }),
  containerIssuer: option({
    name: 'container-issuer',
    value: '<iss>',
    help: 'the iss claim container tokens must carry',
    env: ['SYNTH_CONTAINER_AUTH_ISSUER'],
    defaultHelp: 'synth-backend',
    parse: key,
  }),
  'tunnel.url': option({
    name: 'public-url',
    value: '<url>',
    help: 'the URL for --tunnel preconfigured',
    env: ['TASKAPP_URL', 'SYNTH_TASK_APP_URL', 'SYNTH_CONTAINER_URL'],
    parse: httpUrl,
  }),
  'tunnel.token': option({
    name: 'cloudflare-token',
    value: '<t>',
    help: 'named tunnel token',
    env: ['CLOUDFLARE_TUNNEL_TOKEN'],
    parse: text,
    secret: true,
  }),
  'tunnel.hostname': option({
    name: 'hostname',
    value: '<host>',
    help: 'named tunnel hostname',
    env: ['CLOUDFLARE_TUNNEL_HOSTNAME'],
    parse: text,
  }),
  'tunnel.install': toggle({
    name: 'install-cloudflared',
    help: 'quick/named: download cloudflared (checksum-verified) if CLOUDFLARED_PATH, PATH and the cache have none',
  }),
  onPortConflict: option({
    name: 'on-port-conflict',
    value: '<p>',
    help: PORT_CONFLICT_POLICIES.join(' | '),
    default: 'next',
    parse: oneOf(PORT_CONFLICT_POLICIES),
  }),
  verifyTunnel: toggle({
    name: 'verify-tunnel',
    help: 'probe /health through the public URL before reporting ready',
  }),
  json: toggle({ name: 'json', help: 'print one JSON line {url, localUrl, port, tunnel, headers}' }),
  logLevel: logLevelFlag('warn', '; progress lines show unless error/silent'),
  verbose: VERBOSE,
} as const satisfies ServeTargets

/** The flags of `taskapp check`, in help order. */
export const CHECK_FLAGS = {
  apiKey: option({
    name: 'api-key',
    value: '<key>',
    help: "the task app's API key",
    env: ENVIRONMENT_API_KEY_ENV_NAMES,
    parse: text,
    secret: true,
  }),
  headers: list({
    name: 'header',
    short: 'H',
    value: '<"N: v">',
    help: 'extra header; one that carries a credential (the relay worker token, Authorization) goes in --header-file',
    parse: header,
    secret: credentialHeader,
    collect: (entries): Readonly<Record<string, string>> => Object.fromEntries(entries),
  }),
  timeoutMs: option({
    name: 'timeout',
    value: '<ms>',
    help: 'deadline',
    default: DEFAULTS.checkTimeoutMs,
    parse: milliseconds,
  }),
  wait: toggle({ name: 'wait', help: 'wait until healthy (up to --timeout) instead of probing once' }),
  json: toggle({ name: 'json', help: 'print the result as one JSON line' }),
} as const satisfies {
  readonly [K in Exclude<keyof CheckCommand, 'command' | 'url'>]: Flag<CheckCommand[K]>
}

/** The flags of `taskapp relay`, in help order. */
export const RELAY_FLAGS = {
  port: option({
    name: 'port',
    short: 'p',
    value: '<n>',
    help: 'port to bind, 0 for any free one',
    env: ['TASKAPP_RELAY_PORT'],
    default: DEFAULTS.relayPort,
    parse: port,
  }),
  host: option({
    name: 'host',
    value: '<host>',
    help: 'interface to bind; loopback only unless --allow-non-loopback',
    env: ['TASKAPP_RELAY_HOST'],
    default: DEFAULTS.host,
    parse: key,
  }),
  allowNonLoopback: toggle({
    name: 'allow-non-loopback',
    help: 'allow a --host that is not loopback (e.g. 0.0.0.0 behind a proxy)',
  }),
  publicUrl: option({
    name: 'public-url',
    value: '<url>',
    help: 'base URL callers use (behind a proxy / TLS terminator)',
    env: ['TASKAPP_RELAY_PUBLIC_BASE_URL'],
    defaultHelp: 'http://<host>:<port>',
    parse: httpUrl,
  }),
  apiKeys: list({
    name: 'api-key',
    value: '<key>',
    help: 'key allowed to create leases; if none is given, one is generated and printed once',
    env: ['TASKAPP_RELAY_API_KEYS'],
    parse: key,
    secret: true,
  }),
  leaseFile: option({
    name: 'lease-file',
    value: '<path>',
    help:
      'keep leases in this file and <path>.journal (mode 0600) so a restarted relay keeps its tunnels: agents ' +
      'reconnect to the same URLs. Pair it with --api-key-file so keys survive too.',
    env: ['TASKAPP_RELAY_LEASE_FILE'],
    defaultHelp: 'in memory, lost on restart',
    parse: filePath,
  }),
  logLevel: logLevelFlag('info', '; debug logs one line per request'),
  verbose: VERBOSE,
} as const satisfies {
  readonly [K in Exclude<keyof RelayCommand, 'command'>]: Flag<RelayCommand[K]>
} & { readonly verbose: Flag<boolean> }

/** The flags of `taskapp init`. */
export const INIT_FLAGS = {
  force: toggle({
    name: 'force',
    help: "write into a non-empty directory: the starter's files replace files of the same name, others stay",
  }),
} as const satisfies {
  readonly [K in Exclude<keyof InitCommand, 'command' | 'dir'>]: Flag<InitCommand[K]>
}

// ---- the job commands: taskapp optimize, taskapp dev-backend

/** Tunnels `taskapp optimize --tunnel` accepts. */
export const OPTIMIZE_TUNNEL_MODES = [
  'local',
  'synthtunnel',
  'quick',
] as const satisfies readonly TunnelMode[]

/** A task app file: `.ts`, `.mts`, `.js` or `.mjs`. */
const taskAppFile: FlagParser<string> = (raw, ctx) => {
  if (!/\.(?:ts|mts|js|mjs)$/.test(raw))
    throw ctx.fail(`must be a .ts, .mts, .js or .mjs file, got "${raw}".`)
  return raw
}

/** A dot-notation override, `key=value`; the value is read as JSON when it parses, else as text. */
const override: FlagParser<readonly [string, unknown]> = (raw, ctx) => {
  const eq = raw.indexOf('=')
  const name = eq > 0 ? raw.slice(0, eq).trim() : ''
  if (!/^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*$/.test(name)) {
    throw ctx.fail(`must look like "prompt_learning.gepa.rollout.budget=200" (key=value), got "${raw}".`)
  }
  const text = raw.slice(eq + 1)
  try {
    return [name, JSON.parse(text) as unknown]
  } catch {
    return [name, text]
  }
}

/** The flags of `taskapp optimize`, in help order. */
export const OPTIMIZE_FLAGS = {
  app: option({
    name: 'app',
    short: 'a',
    value: '<file>',
    help: 'the task app file (.ts, .mts, .js, .mjs exporting default, app, buildConfig or config); required',
    parse: taskAppFile,
  }),
  backendUrl: option({
    name: 'backend',
    short: 'b',
    value: '<url>',
    help:
      'job backend base URL, e.g. one started with `taskapp dev-backend`; unset: SYNTH_BACKEND_URL_OVERRIDE ' +
      '(local, dev, prod or a URL), then SYNTH_BACKEND_URL',
    defaultHelp: 'https://api.usesynth.ai',
    parse: httpUrl,
  }),
  backendApiKey: option({
    name: 'backend-api-key',
    value: '<key>',
    help: 'the Synth API key the backend wants (never sent to the task app)',
    env: ['SYNTH_API_KEY'],
    parse: key,
    secret: true,
  }),
  tunnelMode: option({
    name: 'tunnel',
    short: 't',
    value: '<mode>',
    help: OPTIMIZE_TUNNEL_MODES.join(' | '),
    defaultHelp:
      'synthtunnel with a relay URL; else local for a backend on this machine, else synthtunnel on the backend',
    parse: oneOf(OPTIMIZE_TUNNEL_MODES),
  }),
  relayUrl: option({
    name: 'relay-url',
    value: '<url>',
    help: 'a self-hosted relay (`taskapp relay`) for the synthtunnel tunnel',
    env: ['TASKAPP_RELAY_URL'],
    parse: httpUrl,
  }),
  relayApiKey: option({
    name: 'relay-api-key',
    value: '<key>',
    help: 'key for creating leases on that relay',
    env: ['TASKAPP_RELAY_API_KEY'],
    parse: key,
    secret: true,
  }),
  containerKeys: option({
    name: 'container-keys',
    value: '<keys>',
    help:
      "trust the backend's container-token key (kid:base64,...; `taskapp dev-backend` prints it): " +
      'the task app then needs no key from the job',
    env: ['SYNTH_CONTAINER_TRUSTED_PUBKEYS'],
    defaultHelp: 'none',
    parse: containerKeys,
  }),
  port: option({
    name: 'port',
    short: 'p',
    value: '<n>',
    help: 'task app port, 1024-65535 or 0 for any (next free one if busy)',
    env: ['TASKAPP_PORT'],
    default: DEFAULTS.servePort,
    parse: port,
  }),
  overrides: list({
    name: 'override',
    short: 'o',
    value: '<key=value>',
    help: 'override a job config key (dot notation; the value is read as JSON, else as text), e.g. prompt_learning.gepa.rollout.budget=200',
    parse: override,
    collect: (entries): Readonly<Record<string, unknown>> => Object.fromEntries(entries),
  }),
  timeoutMs: option({
    name: 'timeout',
    value: '<ms>',
    help: 'give up after this long: the job is cancelled and the task app stopped',
    default: 3_600_000,
    parse: milliseconds,
  }),
  json: toggle({ name: 'json', help: 'print one JSON event per line on stdout: progress, then the result' }),
  logLevel: logLevelFlag('warn', '; the progress view shows unless error/silent'),
  verbose: VERBOSE,
} as const satisfies {
  readonly [K in Exclude<keyof OptimizeCommand, 'command' | 'config' | 'app'>]-?: Flag<OptimizeCommand[K]>
} & { readonly app: Flag<string | undefined>; readonly verbose: Flag<boolean> }

/** The flags of `taskapp dev-backend`, in help order. */
export const DEV_BACKEND_FLAGS = {
  port: option({
    name: 'port',
    short: 'p',
    value: '<n>',
    help: 'port to bind, 0 for any free one (8000 is where SYNTH_BACKEND_URL_OVERRIDE=local points)',
    env: ['TASKAPP_DEV_BACKEND_PORT'],
    default: 8000,
    parse: port,
  }),
  host: option({
    name: 'host',
    value: '<host>',
    help: 'interface to bind',
    default: DEFAULTS.host,
    parse: text,
  }),
  allowNonLoopback: toggle({
    name: 'allow-non-loopback',
    help: 'allow a --host that is not loopback (e.g. 0.0.0.0)',
  }),
  deterministicModel: toggle({
    name: 'deterministic-model',
    help: 'answer the task app and the optimizer with the built-in deterministic model (offline, no weights)',
  }),
  upstreamUrl: option({
    name: 'upstream-url',
    value: '<url>',
    help: "an OpenAI-compatible base URL (…/v1): the task app's model calls and the reflections go there",
    env: ['TASKAPP_UPSTREAM_URL'],
    parse: httpUrl,
  }),
  upstreamApiKey: option({
    name: 'upstream-api-key',
    value: '<key>',
    help: 'key for --upstream-url (Authorization: Bearer)',
    env: ['TASKAPP_UPSTREAM_API_KEY'],
    parse: key,
    secret: true,
  }),
  upstreamModel: option({
    name: 'upstream-model',
    value: '<name>',
    help: 'force this model name on every upstream call',
    env: ['TASKAPP_UPSTREAM_MODEL'],
    parse: key,
  }),
  apiKeys: list({
    name: 'api-key',
    value: '<key>',
    help: 'key job clients must send (their SYNTH_API_KEY); if none is given, one is generated and printed once',
    env: ['SYNTH_API_KEY'],
    parse: key,
    secret: true,
  }),
  signingKeyFile: option({
    name: 'signing-key-file',
    value: '<path>',
    help:
      'sign container tokens with this Ed25519 private key (base64 of its 32-byte seed, as in ' +
      'SYNTH_CONTAINER_AUTH_PRIVATE_KEY, which is read when this flag is absent); the public key to trust is printed',
    parse: filePath,
  }),
  generateSigningKey: toggle({
    name: 'generate-signing-key',
    help: 'sign container tokens with a key pair made for this run; the public key to trust is printed',
  }),
  signingKeyId: option({
    name: 'signing-key-id',
    value: '<kid>',
    help: 'the kid of the signing key (in each token and in the printed trusted key)',
    parse: key,
  }),
  json: toggle({
    name: 'json',
    help: 'print one JSON line {url, model, apiKey (when generated), apiKeySource, signingKey, trustedKey}',
  }),
  logLevel: logLevelFlag('info'),
  verbose: VERBOSE,
} as const satisfies {
  readonly [
    K in Exclude<
      keyof DevBackendCommand,
      'command' | 'upstreamApiKeyFrom' | 'apiKeysFrom' | 'signingKey' | 'signingKeyFrom'
    >
  ]-?: Flag<DevBackendCommand[K]>
} & { readonly verbose: Flag<boolean> }

/** Every command's flag table. */
export const FLAG_TABLES = {
  serve: SERVE_FLAGS,
  check: CHECK_FLAGS,
  relay: RELAY_FLAGS,
  init: INIT_FLAGS,
  optimize: OPTIMIZE_FLAGS,
  'dev-backend': DEV_BACKEND_FLAGS,
} as const
