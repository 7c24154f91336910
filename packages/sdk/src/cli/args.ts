/**
 * Argument parsing of the `taskapp` CLI: argv (and env) in, a typed command out. Pure: no I/O,
 * so every flag rule is tested without a process. Bad input throws `TASKAPP_ERR_CLI_USAGE`
 * (exit status 2) with a message that names the flag and says what was expected.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { SdkError } from '../errors.js'

/** Tunnel modes `taskapp serve --tunnel` accepts (the `InProcessTaskApp` modes). */
export const TUNNEL_MODES = ['local', 'quick', 'named', 'synthtunnel', 'preconfigured'] as const
/** One of {@link TUNNEL_MODES}. */
export type TunnelModeFlag = (typeof TUNNEL_MODES)[number]

/** Port-conflict policies `--on-port-conflict` accepts. */
export const PORT_CONFLICT_POLICIES = ['next', 'error', 'kill'] as const
/** Log levels `--log-level` accepts. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number]

/** The sub-commands. */
export const COMMANDS = ['serve', 'check', 'relay'] as const
/** One of {@link COMMANDS}. */
export type CommandName = (typeof COMMANDS)[number]

/** `taskapp serve <file> ...` */
export interface ServeCommand {
  readonly command: 'serve'
  /** The task app file (`.ts`, `.mts`, `.js`, `.mjs`). */
  readonly file: string
  readonly port: number
  readonly host: string
  readonly tunnel: TunnelModeFlag
  readonly relayUrl?: string
  readonly relayApiKey?: string
  readonly apiKey?: string
  /** Where `apiKey` came from. */
  readonly apiKeyFrom?: 'flag' | 'env'
  readonly publicUrl?: string
  readonly cloudflareToken?: string
  readonly hostname?: string
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
  readonly logLevel: LogLevel
  readonly allowNonLoopback: boolean
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
export type Command = ServeCommand | CheckCommand | RelayCommand | HelpCommand | VersionCommand

/** The environment variables the CLI reads (all optional). */
export interface CliEnv {
  readonly [name: string]: string | undefined
}

/** Defaults, documented in the README and the help texts. */
export const DEFAULTS = {
  servePort: 8114,
  host: '127.0.0.1',
  relayPort: 8787,
  checkTimeoutMs: 5_000,
} as const

function usage(command: string | undefined, message: string): SdkError {
  const where = command === undefined ? 'taskapp' : `taskapp ${command}`
  const help = command === undefined ? 'taskapp --help' : `taskapp ${command} --help`
  return new SdkError('TASKAPP_ERR_CLI_USAGE', `${where}: ${message}\nRun \`${help}\` for usage.`)
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value
}

function parsePort(command: string, flag: string, raw: string): number {
  const expected = `${flag} must be 0 (any free port) or an integer in [1024, 65535]`
  if (!/^\d+$/.test(raw.trim())) throw usage(command, `${expected}, got "${raw}".`)
  const port = Number(raw)
  if ((port !== 0 && port < 1024) || port > 65_535) throw usage(command, `${expected}, got ${port}.`)
  return port
}

function parseUrl(command: string, flag: string, raw: string, protocols: readonly string[]): string {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw usage(command, `${flag} must be an absolute URL (${protocols.join(' or ')}), got "${raw}".`)
  }
  if (!protocols.includes(url.protocol.replace(/:$/, ''))) {
    throw usage(command, `${flag} must use ${protocols.join(' or ')}, got "${url.protocol}".`)
  }
  return raw.replace(/\/+$/, '')
}

function oneOf<T extends string>(command: string, flag: string, raw: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw)) {
    throw usage(command, `${flag} must be one of ${allowed.join(', ')}, got "${raw}".`)
  }
  return raw as T
}

function parseHeader(raw: string): [string, string] {
  const colon = raw.indexOf(':')
  const name = colon > 0 ? raw.slice(0, colon).trim() : ''
  if (colon <= 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
    throw usage('check', `--header must look like "Name: value", got "${raw}".`)
  }
  return [name, raw.slice(colon + 1).trim()]
}

type Options = NonNullable<ParseArgsConfig['options']>

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>

function parseFlags(
  command: string,
  args: readonly string[],
  options: Options,
): { values: Values; positionals: string[] } {
  try {
    return parseArgs({
      args: [...args],
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    })
  } catch (cause) {
    const raw = cause instanceof Error ? cause.message : String(cause)
    // Node's parseArgs messages: keep the first sentence ("Unknown option '--x'", "Option '--port
    // <value>' argument missing"), drop its advice about '--' positionals.
    const message = raw.split('\n')[0]?.replace(/\. To specify a positional argument.*$/, '') ?? raw
    throw usage(command, `${message}.`)
  }
}

const SERVE_OPTIONS: Options = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  tunnel: { type: 'string', short: 't' },
  'relay-url': { type: 'string' },
  'relay-api-key': { type: 'string' },
  'api-key': { type: 'string' },
  'public-url': { type: 'string' },
  'cloudflare-token': { type: 'string' },
  hostname: { type: 'string' },
  'on-port-conflict': { type: 'string' },
  'verify-tunnel': { type: 'boolean' },
  json: { type: 'boolean' },
  'log-level': { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  'allow-non-loopback': { type: 'boolean' },
}

const CHECK_OPTIONS: Options = {
  'api-key': { type: 'string' },
  header: { type: 'string', short: 'H', multiple: true },
  timeout: { type: 'string' },
  wait: { type: 'boolean' },
  json: { type: 'boolean' },
}

const RELAY_OPTIONS: Options = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  'public-url': { type: 'string' },
  'api-key': { type: 'string', multiple: true },
  'lease-file': { type: 'string' },
  'log-level': { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  'allow-non-loopback': { type: 'boolean' },
}

function str(values: Values, name: string): string | undefined {
  const v = values[name]
  return typeof v === 'string' ? v : undefined
}

function logLevelOf(command: string, values: Values, env: CliEnv, fallback: LogLevel): LogLevel {
  if (values.verbose === true) return 'debug'
  const raw = str(values, 'log-level') ?? nonEmpty(env.TASKAPP_LOG_LEVEL)
  return raw === undefined ? fallback : oneOf(command, '--log-level', raw.toLowerCase(), LOG_LEVELS)
}

function exactlyOnePositional(command: string, positionals: string[], what: string, example: string): string {
  if (positionals.length === 0) throw usage(command, `missing ${what} (e.g. \`${example}\`).`)
  if (positionals.length > 1)
    throw usage(command, `expected one ${what}, got ${positionals.length}: ${positionals.join(' ')}.`)
  return positionals[0] as string
}

function parseServe(args: readonly string[], env: CliEnv): ServeCommand | HelpCommand {
  const { values, positionals } = parseFlags('serve', args, SERVE_OPTIONS)
  if (values.help === true) return { command: 'help', topic: 'serve' }
  const file = exactlyOnePositional('serve', positionals, 'task app file', 'taskapp serve ./task-app.ts')
  if (!/\.(?:ts|mts|js|mjs)$/.test(file)) {
    throw usage('serve', `the task app file must end in .ts, .mts, .js or .mjs, got "${file}".`)
  }
  const rawPort = str(values, 'port') ?? nonEmpty(env.TASKAPP_PORT)
  const port = rawPort === undefined ? DEFAULTS.servePort : parsePort('serve', '--port', rawPort)
  const relayUrlRaw = str(values, 'relay-url') ?? nonEmpty(env.TASKAPP_RELAY_URL)
  const relayUrl =
    relayUrlRaw === undefined ? undefined : parseUrl('serve', '--relay-url', relayUrlRaw, ['http', 'https'])
  const tunnelRaw = str(values, 'tunnel') ?? nonEmpty(env.TASKAPP_TUNNEL)
  const tunnel: TunnelModeFlag =
    tunnelRaw === undefined
      ? relayUrl !== undefined
        ? 'synthtunnel'
        : 'local'
      : oneOf('serve', '--tunnel', tunnelRaw, TUNNEL_MODES)
  const publicUrlRaw = str(values, 'public-url') ?? nonEmpty(env.TASKAPP_URL)
  const publicUrl =
    publicUrlRaw === undefined
      ? undefined
      : parseUrl('serve', '--public-url', publicUrlRaw, ['http', 'https'])
  if (tunnel === 'preconfigured' && publicUrl === undefined) {
    throw usage('serve', '--tunnel preconfigured needs --public-url <url> (or TASKAPP_URL).')
  }
  if (tunnel !== 'preconfigured' && str(values, 'public-url') !== undefined) {
    throw usage('serve', `--public-url only applies to --tunnel preconfigured (the tunnel is ${tunnel}).`)
  }
  if (tunnel !== 'synthtunnel' && str(values, 'relay-url') !== undefined) {
    throw usage('serve', `--relay-url only applies to --tunnel synthtunnel (the tunnel is ${tunnel}).`)
  }
  const cloudflareToken = str(values, 'cloudflare-token') ?? nonEmpty(env.CLOUDFLARE_TUNNEL_TOKEN)
  const hostname = str(values, 'hostname') ?? nonEmpty(env.CLOUDFLARE_TUNNEL_HOSTNAME)
  if (tunnel === 'named' && (cloudflareToken === undefined || hostname === undefined)) {
    throw usage(
      'serve',
      '--tunnel named needs --cloudflare-token <token> and --hostname <host> (or CLOUDFLARE_TUNNEL_TOKEN and CLOUDFLARE_TUNNEL_HOSTNAME).',
    )
  }
  const relayApiKey =
    str(values, 'relay-api-key') ?? nonEmpty(env.TASKAPP_RELAY_API_KEY) ?? nonEmpty(env.SYNTH_API_KEY)
  const apiKey = str(values, 'api-key') ?? nonEmpty(env.ENVIRONMENT_API_KEY)
  const conflictRaw = str(values, 'on-port-conflict')
  return {
    command: 'serve',
    file,
    port,
    host: str(values, 'host') ?? DEFAULTS.host,
    tunnel,
    ...(relayUrl !== undefined && { relayUrl }),
    ...(relayApiKey !== undefined && { relayApiKey }),
    ...(apiKey !== undefined && {
      apiKey,
      apiKeyFrom: str(values, 'api-key') !== undefined ? 'flag' : 'env',
    }),
    ...(publicUrl !== undefined && { publicUrl }),
    ...(cloudflareToken !== undefined && { cloudflareToken }),
    ...(hostname !== undefined && { hostname }),
    onPortConflict:
      conflictRaw === undefined
        ? 'next'
        : oneOf('serve', '--on-port-conflict', conflictRaw, PORT_CONFLICT_POLICIES),
    verifyTunnel: values['verify-tunnel'] === true,
    json: values.json === true,
    logLevel: logLevelOf('serve', values, env, 'warn'),
    allowNonLoopback: values['allow-non-loopback'] === true,
  }
}

function parseCheck(args: readonly string[], env: CliEnv): CheckCommand | HelpCommand {
  const { values, positionals } = parseFlags('check', args, CHECK_OPTIONS)
  if (values.help === true) return { command: 'help', topic: 'check' }
  const url = parseUrl(
    'check',
    '<url>',
    exactlyOnePositional('check', positionals, 'task app URL', 'taskapp check http://127.0.0.1:8114'),
    ['http', 'https'],
  )
  const rawTimeout = str(values, 'timeout')
  let timeoutMs: number = DEFAULTS.checkTimeoutMs
  if (rawTimeout !== undefined) {
    if (!/^\d+$/.test(rawTimeout) || Number(rawTimeout) < 1) {
      throw usage('check', `--timeout must be a positive number of milliseconds, got "${rawTimeout}".`)
    }
    timeoutMs = Number(rawTimeout)
  }
  const headers: Record<string, string> = {}
  const rawHeaders = values.header
  for (const raw of Array.isArray(rawHeaders) ? rawHeaders : []) {
    if (typeof raw !== 'string') continue
    const [name, value] = parseHeader(raw)
    headers[name] = value
  }
  const apiKey = str(values, 'api-key') ?? nonEmpty(env.ENVIRONMENT_API_KEY)
  return {
    command: 'check',
    url,
    ...(apiKey !== undefined && { apiKey }),
    headers,
    timeoutMs,
    wait: values.wait === true,
    json: values.json === true,
  }
}

function parseRelay(args: readonly string[], env: CliEnv): RelayCommand | HelpCommand {
  const { values, positionals } = parseFlags('relay', args, RELAY_OPTIONS)
  if (values.help === true) return { command: 'help', topic: 'relay' }
  if (positionals.length > 0)
    throw usage('relay', `takes no positional arguments, got: ${positionals.join(' ')}.`)
  const rawPort = str(values, 'port') ?? nonEmpty(env.TASKAPP_RELAY_PORT)
  const port = rawPort === undefined ? DEFAULTS.relayPort : parsePort('relay', '--port', rawPort)
  const publicRaw = str(values, 'public-url') ?? nonEmpty(env.TASKAPP_RELAY_PUBLIC_BASE_URL)
  const publicUrl =
    publicRaw === undefined ? undefined : parseUrl('relay', '--public-url', publicRaw, ['http', 'https'])
  const flagKeys = Array.isArray(values['api-key'])
    ? values['api-key'].filter((k): k is string => typeof k === 'string')
    : []
  const envKeys = (env.TASKAPP_RELAY_API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '')
  const apiKeys = flagKeys.length > 0 ? flagKeys : envKeys
  if (apiKeys.some((k) => k.trim() === '')) throw usage('relay', '--api-key must not be empty.')
  const flagLeaseFile = str(values, 'lease-file')
  if (flagLeaseFile !== undefined && flagLeaseFile.trim() === '')
    throw usage('relay', '--lease-file must be a file path, got an empty value.')
  const leaseFile = flagLeaseFile ?? nonEmpty(env.TASKAPP_RELAY_LEASE_FILE)
  return {
    command: 'relay',
    port,
    host: str(values, 'host') ?? nonEmpty(env.TASKAPP_RELAY_HOST) ?? DEFAULTS.host,
    ...(publicUrl !== undefined && { publicUrl }),
    apiKeys,
    ...(leaseFile !== undefined && { leaseFile }),
    logLevel: logLevelOf('relay', values, env, 'info'),
    allowNonLoopback: values['allow-non-loopback'] === true,
  }
}

/**
 * Parses the CLI's argv (without `node` and the script) into a {@link Command}.
 *
 * @example
 * ```ts
 * parseCommand(['serve', 'app.ts', '--port', '9000'], process.env)
 * // { command: 'serve', file: 'app.ts', port: 9000, tunnel: 'local', ... }
 * ```
 */
export function parseCommand(argv: readonly string[], env: CliEnv = {}): Command {
  const [first, ...rest] = argv
  if (first === undefined || first === '--help' || first === '-h') return { command: 'help' }
  if (first === '--version' || first === '-V') return { command: 'version' }
  if (first === 'help') {
    const [topic, ...extra] = rest
    if (topic === undefined) return { command: 'help' }
    if (extra.length > 0 || !(COMMANDS as readonly string[]).includes(topic)) {
      throw usage(undefined, `unknown help topic "${rest.join(' ')}"; try one of ${COMMANDS.join(', ')}.`)
    }
    return { command: 'help', topic: topic as CommandName }
  }
  switch (first) {
    case 'serve':
      return parseServe(rest, env)
    case 'check':
      return parseCheck(rest, env)
    case 'relay':
      return parseRelay(rest, env)
    default:
      throw usage(
        undefined,
        first.startsWith('-')
          ? `unknown option "${first}" (options come after the command).`
          : `unknown command "${first}"; use one of ${COMMANDS.join(', ')}.`,
      )
  }
}
