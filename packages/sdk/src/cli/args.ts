/**
 * Argument parsing of the `taskapp` CLI: argv (and env) in, a typed command out. No I/O but
 * reading the `--<name>-file` of a secret flag, so every flag rule is tested without a process;
 * warnings go to a hook. Bad input throws `TASKAPP_ERR_CLI_USAGE` (exit status 2) with a
 * message that names the flag and says what was expected.
 *
 * The flags themselves (names, env fallbacks, defaults, parsers, help lines) are declared once,
 * in the tables of `flags.ts`; this file adds the positionals and the rules between flags.
 */
import { relayApiKeyFromEnv } from '@taskapp/core'
import { TUNNEL_SPEC_KEYS, type TunnelSpec } from '@taskapp/in-process'
import { isLoopbackHost } from '@taskapp/port-manager'
import { usage, type CliEnv, type FlagTable } from './flag-table'
import { flagContext, parseFlags, pick, resolveFlags, type FlagHooks, type ParsedFlags } from './flag-parse'
import {
  CHECK_FLAGS,
  httpUrl,
  INIT_FLAGS,
  RELAY_FLAGS,
  SERVE_FLAGS,
  type CONTAINER_AUTH_MODES,
  type LogLevel,
  type PORT_CONFLICT_POLICIES,
  type TunnelModeFlag,
} from './flags'
import { nonLoopbackHost, relayKeyNeeded } from './render-error'
import { relayClusterSecret } from './relay-cluster-args'
import { closest } from './suggest'

import { parseDevBackend, parseOptimize, type DevBackendCommand, type OptimizeCommand } from './job-args'

export type { CliEnv } from './flag-table'
export type { FlagHooks } from './flag-parse'
export type { DevBackendCommand, OptimizeCommand } from './job-args'
export { DEFAULTS, LOG_LEVELS, PORT_CONFLICT_POLICIES, TUNNEL_MODES } from './flags'
export type { LogLevel, TunnelModeFlag } from './flags'

/** The sub-commands. */
export const COMMANDS = ['serve', 'check', 'relay', 'init', 'optimize', 'dev-backend'] as const
/** One of {@link COMMANDS}. */
export type CommandName = (typeof COMMANDS)[number]

/** `taskapp serve <file> ...` */
export interface ServeCommand {
  readonly command: 'serve'
  /** The task app file (`.ts`, `.mts`, `.js`, `.mjs`). */
  readonly file: string
  readonly port: number
  readonly host: string
  /**
   * The `InProcessTaskApp` tunnel spec, with only the keys its mode takes (`--relay-url` →
   * `relayUrl`, `--public-url` → `url`, `--cloudflare-token` → `token`, ...).
   */
  readonly tunnel: TunnelSpec
  readonly apiKey?: string
  /** Where `apiKey` came from (`file`: `--api-key-file`). */
  readonly apiKeyFrom?: 'flag' | 'file' | 'env'
  /** Trusted container public keys (`--container-keys` or `SYNTH_CONTAINER_TRUSTED_PUBKEYS`). */
  readonly containerKeys?: string
  /** `--container-auth` or `SYNTH_CONTAINER_AUTH_MODE`. */
  readonly containerAuthMode?: (typeof CONTAINER_AUTH_MODES)[number]
  /** `--container-issuer` or `SYNTH_CONTAINER_AUTH_ISSUER`. */
  readonly containerIssuer?: string
  /**
   * `flag` when a `--container-*` flag was given: the three values then go to the app as the
   * `containerAuth` option. From the environment alone they are only checked here: the task
   * server reads the same variables itself (so a file exporting a ready-made app works too).
   */
  readonly containerAuthFrom?: 'flag' | 'env'
  readonly onPortConflict: (typeof PORT_CONFLICT_POLICIES)[number]
  readonly verifyTunnel: boolean
  readonly json: boolean
  readonly logLevel: LogLevel
  readonly allowNonLoopback: boolean
}

/** `taskapp check <url> ...` */
export interface CheckCommand {
  readonly command: 'check'
  readonly url: string
  readonly apiKey?: string
  /** Extra headers (`-H 'Name: value'`), e.g. a relay worker token. */
  readonly headers: Readonly<Record<string, string>>
  readonly timeoutMs: number
  /** Wait until healthy (up to `timeoutMs`) instead of probing once. */
  readonly wait: boolean
  readonly json: boolean
}

/** `taskapp relay ...` */
export interface RelayCommand {
  readonly command: 'relay'
  readonly port: number
  readonly host: string
  readonly publicUrl?: string
  /** Keys that may create leases; empty means "generate one and print it". */
  readonly apiKeys: readonly string[]
  /** JSON file the relay keeps its leases in, so a restart keeps the tunnels; absent: in memory. */
  readonly leaseFile?: string
  /** Key of the status page (`/admin`) and of `/metrics` on the main port; absent: both closed. */
  readonly adminKey?: string
  /** A second port for `/metrics`, `/livez`, `/readyz` and `/admin`; absent: none. */
  readonly adminPort?: number
  readonly adminHost: string
  /** Cluster mode: the Redis the nodes share (absent: a single relay). */
  readonly redisUrl?: string
  /** URL the other nodes reach this one on. */
  readonly advertiseUrl?: string
  /** File the cluster secret was read from (else `TASKAPP_RELAY_CLUSTER_SECRET`). */
  readonly clusterSecretFile?: string
  /** The cluster secret (from the file or the environment); set when `redisUrl` is. Secret. */
  readonly clusterSecret?: string
  readonly nodeId?: string
  readonly logLevel: LogLevel
  readonly allowNonLoopback: boolean
}

/** `taskapp init [dir]` */
export interface InitCommand {
  readonly command: 'init'
  /** Where to write the starter project (created if missing). @default '.' */
  readonly dir: string
  /** Write into a non-empty directory. */
  readonly force: boolean
}

/** `taskapp --help`, `taskapp help [cmd]`, `taskapp <cmd> --help`. */
export interface HelpCommand {
  readonly command: 'help'
  readonly topic?: CommandName
}

/** `taskapp --version`. */
export interface VersionCommand {
  readonly command: 'version'
}

/** What {@link parseCommand} returns. */
export type Command =
  | ServeCommand
  | CheckCommand
  | RelayCommand
  | InitCommand
  | OptimizeCommand
  | DevBackendCommand
  | HelpCommand
  | VersionCommand

function exactlyOnePositional(
  command: string,
  positionals: readonly string[],
  what: string,
  example: string,
): string {
  if (positionals.length === 0) throw usage(command, `missing ${what} (e.g. \`${example}\`).`)
  if (positionals.length > 1)
    throw usage(command, `expected one ${what}, got ${positionals.length}: ${positionals.join(' ')}.`)
  return positionals[0] as string
}

/** The flags of `args`, or `undefined` when `--help` was asked for (which wins over bad values). */
function flagsOrHelp(
  command: CommandName,
  table: FlagTable,
  args: readonly string[],
): ParsedFlags | undefined {
  const parsed = parseFlags(command, table, args)
  return parsed.help ? undefined : parsed
}

/** The tunnel spec of `mode`: the `tunnel.*` values that mode takes (see `TUNNEL_SPEC_KEYS`). */
function tunnelSpec(mode: TunnelModeFlag, values: Record<string, unknown>): ServeCommand['tunnel'] {
  const given = pick(values, 'tunnel')
  const spec: Record<string, unknown> = { mode }
  // `false` is a toggle left off (`--install-cloudflared`): the spec's own default.
  for (const key of TUNNEL_SPEC_KEYS[mode])
    if (given[key] !== undefined && given[key] !== false) spec[key] = given[key]
  return spec as ServeCommand['tunnel']
}

function containerAuthFrom(sources: Readonly<Record<string, string | undefined>>): 'flag' | 'env' {
  const names = ['containerKeys', 'containerAuthMode', 'containerIssuer']
  return names.some((name) => sources[name] === 'flag') ? 'flag' : 'env'
}

/**
 * With `--tunnel synthtunnel` and no relay URL, `InProcessTaskApp` leases on Synth's hosted relay.
 * A key from `TASKAPP_RELAY_API_KEY` belongs to a self-hosted relay and is not sent there; the
 * key is then `--relay-api-key` or `SYNTH_API_KEY`.
 */
function withoutSelfHostedKeyForSynth(
  spec: ServeCommand['tunnel'],
  keySource: string,
  env: CliEnv,
): ServeCommand['tunnel'] {
  if (spec.mode !== 'synthtunnel' || spec.relayUrl !== undefined || keySource !== 'env') return spec
  const synthKey = relayApiKeyFromEnv(env, { selfHosted: false })?.value
  const { relayApiKey: _selfHosted, ...rest } = spec
  return synthKey === undefined ? rest : { ...rest, relayApiKey: synthKey }
}

function parseServe(args: readonly string[], env: CliEnv, hooks: FlagHooks): ServeCommand | HelpCommand {
  const parsed = flagsOrHelp('serve', SERVE_FLAGS, args)
  if (parsed === undefined) return { command: 'help', topic: 'serve' }
  const file = exactlyOnePositional(
    'serve',
    parsed.positionals,
    'task app file',
    'taskapp serve ./task-app.ts',
  )
  if (!/\.(?:ts|mts|js|mjs)$/.test(file)) {
    throw usage('serve', `the task app file must end in .ts, .mts, .js or .mjs, got "${file}".`)
  }
  const { values, sources } = resolveFlags('serve', SERVE_FLAGS, parsed.given, env, hooks)
  // The rules between flags.
  const mode = values['tunnel.mode'] ?? (values['tunnel.relayUrl'] !== undefined ? 'synthtunnel' : 'local')
  if (mode === 'preconfigured' && values['tunnel.url'] === undefined) {
    throw usage(
      'serve',
      '--tunnel preconfigured needs --public-url <url> (or TASKAPP_URL, SYNTH_TASK_APP_URL, SYNTH_CONTAINER_URL).',
    )
  }
  if (mode !== 'preconfigured' && sources['tunnel.url'] === 'flag') {
    throw usage('serve', `--public-url only applies to --tunnel preconfigured (the tunnel is ${mode}).`)
  }
  if (mode !== 'synthtunnel' && sources['tunnel.relayUrl'] === 'flag') {
    throw usage('serve', `--relay-url only applies to --tunnel synthtunnel (the tunnel is ${mode}).`)
  }
  if (mode === 'named' && (values['tunnel.token'] === undefined || values['tunnel.hostname'] === undefined)) {
    throw usage(
      'serve',
      '--tunnel named needs --cloudflare-token <token> and --hostname <host> (or CLOUDFLARE_TUNNEL_TOKEN and CLOUDFLARE_TUNNEL_HOSTNAME).',
    )
  }
  if (
    values.containerKeys !== undefined &&
    values.containerAuthMode === 'optional_local' &&
    mode !== 'local'
  ) {
    const given =
      sources.containerAuthMode === 'flag'
        ? '--container-auth optional_local'
        : 'SYNTH_CONTAINER_AUTH_MODE=optional_local'
    throw usage(
      'serve',
      `${given} lets unsigned calls from loopback in, and the ${mode} tunnel reaches the app from ` +
        'loopback too, so anyone with the URL would get in: use --tunnel local, or --container-auth required.',
    )
  }
  for (const name of ['containerAuthMode', 'containerIssuer'] as const) {
    if (sources[name] === 'flag' && values.containerKeys === undefined) {
      throw usage(
        'serve',
        `--${SERVE_FLAGS[name].name} needs trusted keys: --container-keys <kid:base64,...> (or SYNTH_CONTAINER_TRUSTED_PUBKEYS).`,
      )
    }
  }
  if (!values.allowNonLoopback && !isLoopbackHost(values.host)) {
    throw usage('serve', nonLoopbackHost(values.host, 'the task app'))
  }
  if (values['tunnel.install'] && mode !== 'quick' && mode !== 'named') {
    throw usage(
      'serve',
      `--install-cloudflared only applies to --tunnel quick or named (the tunnel is ${mode}).`,
    )
  }
  const tunnel = withoutSelfHostedKeyForSynth(tunnelSpec(mode, values), sources['tunnel.relayApiKey'], env)
  if (tunnel.mode === 'synthtunnel' && tunnel.relayApiKey === undefined) {
    throw usage('serve', relayKeyNeeded(tunnel.relayUrl, sources['tunnel.relayApiKey'] === 'env'))
  }
  const { verbose, ...fields } = pick(values)
  return {
    command: 'serve',
    file,
    ...fields,
    tunnel,
    ...(fields.apiKey !== undefined && {
      apiKeyFrom: sources.apiKey === 'flag' || sources.apiKey === 'file' ? sources.apiKey : 'env',
    }),
    ...(values.containerKeys !== undefined && { containerAuthFrom: containerAuthFrom(sources) }),
    logLevel: verbose ? 'debug' : fields.logLevel,
  }
}

function parseCheck(args: readonly string[], env: CliEnv, hooks: FlagHooks): CheckCommand | HelpCommand {
  const parsed = flagsOrHelp('check', CHECK_FLAGS, args)
  if (parsed === undefined) return { command: 'help', topic: 'check' }
  const url = httpUrl(
    exactlyOnePositional('check', parsed.positionals, 'task app URL', 'taskapp check http://127.0.0.1:8114'),
    flagContext('check', '<url>'),
  )
  const { values } = resolveFlags('check', CHECK_FLAGS, parsed.given, env, hooks)
  return { command: 'check', url, ...pick(values) }
}

function parseRelay(args: readonly string[], env: CliEnv, hooks: FlagHooks): RelayCommand | HelpCommand {
  const parsed = flagsOrHelp('relay', RELAY_FLAGS, args)
  if (parsed === undefined) return { command: 'help', topic: 'relay' }
  if (parsed.positionals.length > 0)
    throw usage('relay', `takes no positional arguments, got: ${parsed.positionals.join(' ')}.`)
  const { values } = resolveFlags('relay', RELAY_FLAGS, parsed.given, env, hooks)
  if (!values.allowNonLoopback && !isLoopbackHost(values.host)) {
    throw usage('relay', nonLoopbackHost(values.host, 'the relay'))
  }
  if (!values.allowNonLoopback && !isLoopbackHost(values.adminHost)) {
    throw usage(
      'relay',
      `--admin-host ${values.adminHost} is not a loopback address, so the status page and the metrics would be ` +
        'reachable from other machines: use 127.0.0.1 (the default), or add --allow-non-loopback (and an admin key).',
    )
  }
  const { verbose, ...fields } = pick(values)
  const clusterSecret = relayClusterSecret(fields, env, hooks)
  return {
    command: 'relay',
    ...fields,
    ...(clusterSecret !== undefined && { clusterSecret }),
    logLevel: verbose ? 'debug' : fields.logLevel,
  }
}

function parseInit(args: readonly string[], env: CliEnv, hooks: FlagHooks): InitCommand | HelpCommand {
  const parsed = flagsOrHelp('init', INIT_FLAGS, args)
  if (parsed === undefined) return { command: 'help', topic: 'init' }
  if (parsed.positionals.length > 1)
    throw usage(
      'init',
      `expected at most one directory, got ${parsed.positionals.length}: ${parsed.positionals.join(' ')}.`,
    )
  const { values } = resolveFlags('init', INIT_FLAGS, parsed.given, env, hooks)
  return { command: 'init', dir: parsed.positionals[0] ?? '.', ...pick(values) }
}

/** The message for an unknown first word: a command, or an option that belongs after one. */
function unknownFirst(first: string): string {
  if (first.startsWith('-')) {
    const match = first.startsWith('--') ? closest(first.slice(2), ['help', 'version']) : undefined
    return match === undefined
      ? `unknown option "${first}" (options come after the command).`
      : `unknown option "${first}"; did you mean --${match}?`
  }
  const match = closest(first, COMMANDS)
  return match === undefined
    ? `unknown command "${first}"; use one of ${COMMANDS.join(', ')}.`
    : `unknown command "${first}"; did you mean ${match}?`
}

/**
 * Parses the CLI's argv (without `node` and the script) into a {@link Command}. A secret flag's
 * `--<name>-file` is read here; `hooks.warn` gets one line per secret given as a flag.
 *
 * @example
 * ```ts
 * parseCommand(['serve', 'app.ts', '--port', '9000'], process.env, { warn: (line) => console.error(line) })
 * // { command: 'serve', file: 'app.ts', port: 9000, tunnel: { mode: 'local' }, ... }
 * ```
 */
export function parseCommand(argv: readonly string[], env: CliEnv = {}, hooks: FlagHooks = {}): Command {
  const [first, ...rest] = argv
  if (first === undefined || first === '--help' || first === '-h') return { command: 'help' }
  if (first === '--version' || first === '-V') return { command: 'version' }
  if (first === 'help') {
    const [topic, ...extra] = rest
    if (topic === undefined) return { command: 'help' }
    if (extra.length > 0 || !(COMMANDS as readonly string[]).includes(topic)) {
      const match = extra.length === 0 ? closest(topic, COMMANDS) : undefined
      throw usage(
        undefined,
        `unknown help topic "${rest.join(' ')}"; ${match === undefined ? `try one of ${COMMANDS.join(', ')}` : `did you mean ${match}?`}`,
      )
    }
    return { command: 'help', topic: topic as CommandName }
  }
  switch (first) {
    case 'serve':
      return parseServe(rest, env, hooks)
    case 'check':
      return parseCheck(rest, env, hooks)
    case 'relay':
      return parseRelay(rest, env, hooks)
    case 'init':
      return parseInit(rest, env, hooks)
    case 'optimize':
      return parseOptimize(rest, env, hooks)
    case 'dev-backend':
      return parseDevBackend(rest, env, hooks)
    default:
      throw usage(undefined, unknownFirst(first))
  }
}
