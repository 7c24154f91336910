/**
 * The job commands of the `taskapp` CLI: `taskapp optimize <config.toml> --app <file>` and
 * `taskapp dev-backend`. Their types and argument parsing (the flags are declared in the
 * `OPTIMIZE_FLAGS` and `DEV_BACKEND_FLAGS` tables of `flags.ts`; the rules between flags are here).
 * No I/O but reading the secret files, like `args.ts`.
 */
import { CoreError, resolveSynthBackendUrl } from '@taskapp/core'
import type { LogLevel, OPTIMIZE_TUNNEL_MODES } from './flags'
import { usage, type CliEnv, type FlagTable } from './flag-table'
import { flagContext, parseFlags, resolveFlags, type FlagHooks, type ParsedFlags } from './flag-parse'
import { DEV_BACKEND_FLAGS, OPTIMIZE_FLAGS } from './flags'
import { readSecretFile } from './secret-flags'

/** `taskapp optimize <config.toml> --app <file> ...` */
export interface OptimizeCommand {
  readonly command: 'optimize'
  /** The job config (TOML). */
  readonly config: string
  /** The task app file. */
  readonly app: string
  /** `--backend`; unset: the Synth backend from the environment. */
  readonly backendUrl?: string
  /** The Synth API key (`--backend-api-key`, its file, or `SYNTH_API_KEY`). */
  readonly backendApiKey?: string
  /** `local`, `synthtunnel`, `quick`; unset: local for a backend on this machine, else synthtunnel. */
  readonly tunnelMode?: (typeof OPTIMIZE_TUNNEL_MODES)[number]
  readonly relayUrl?: string
  readonly relayApiKey?: string
  /** Trusted container-token keys for the task app (the backend's public key). */
  readonly containerKeys?: string
  readonly port: number
  /** `--override key=value`, in order. */
  readonly overrides: Readonly<Record<string, unknown>>
  readonly timeoutMs: number
  readonly json: boolean
  readonly logLevel: LogLevel
}

/** `taskapp dev-backend ...` */
export interface DevBackendCommand {
  readonly command: 'dev-backend'
  readonly port: number
  readonly host: string
  readonly allowNonLoopback: boolean
  readonly deterministicModel: boolean
  readonly upstreamUrl?: string
  readonly upstreamApiKey?: string
  /** Where `upstreamApiKey` came from (`file`: `--upstream-api-key-file`). */
  readonly upstreamApiKeyFrom?: 'flag' | 'file' | 'env'
  readonly upstreamModel?: string
  /** Keys job clients must send; empty: one is generated and printed. */
  readonly apiKeys: readonly string[]
  /** Where `apiKeys` came from, when given. */
  readonly apiKeysFrom?: 'flag' | 'file' | 'env'
  /** `--signing-key-file` (its content is `signingKey`). */
  readonly signingKeyFile?: string
  readonly generateSigningKey: boolean
  readonly signingKeyId?: string
  /** The private key read from `--signing-key-file` or `SYNTH_CONTAINER_AUTH_PRIVATE_KEY`. */
  readonly signingKey?: string
  /** Where `signingKey` came from. */
  readonly signingKeyFrom?: 'file' | 'env'
  readonly json: boolean
  readonly logLevel: LogLevel
}

function flagsOrHelp(command: 'optimize' | 'dev-backend', table: FlagTable, args: readonly string[]) {
  const parsed: ParsedFlags = parseFlags(command, table, args)
  return parsed.help ? undefined : parsed
}

/** Whether a backend URL is on this machine (then no tunnel is needed by default). */
function isLocalUrl(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '')
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** The backend URL the job would use: the flag, else the environment, as `runInProcessJob` resolves it. */
function backendOf(flag: string | undefined, env: CliEnv): string {
  try {
    return resolveSynthBackendUrl({ backendUrl: flag, env }).url
  } catch (err) {
    if (err instanceof CoreError) throw usage('optimize', err.message)
    throw err
  }
}

/**
 * Parses `taskapp optimize` (after the command name).
 *
 * @example
 * ```ts
 * parseOptimize(['job.toml', '--app', 'app.ts', '--backend', 'http://127.0.0.1:8000'], process.env, {})
 * ```
 */
export function parseOptimize(
  args: readonly string[],
  env: CliEnv,
  hooks: FlagHooks,
): OptimizeCommand | { command: 'help'; topic: 'optimize' } {
  const parsed = flagsOrHelp('optimize', OPTIMIZE_FLAGS, args)
  if (parsed === undefined) return { command: 'help', topic: 'optimize' }
  const [config, ...extra] = parsed.positionals
  if (config === undefined)
    throw usage('optimize', 'missing the job config (e.g. `taskapp optimize gepa.toml --app ./task-app.ts`).')
  if (extra.length > 0)
    throw usage(
      'optimize',
      `expected one job config, got ${parsed.positionals.length}: ${parsed.positionals.join(' ')}.`,
    )
  const { values, sources } = resolveFlags('optimize', OPTIMIZE_FLAGS, parsed.given, env, hooks)
  const { verbose, app, ...fields } = values
  if (app === undefined)
    throw usage('optimize', '--app <file> is required: the task app file to optimize against.')
  if (fields.tunnelMode !== undefined && fields.tunnelMode !== 'synthtunnel' && sources.relayUrl === 'flag') {
    throw usage(
      'optimize',
      `--relay-url only applies to --tunnel synthtunnel (the tunnel is ${fields.tunnelMode}).`,
    )
  }
  const relayUrl =
    fields.tunnelMode === undefined || fields.tunnelMode === 'synthtunnel' ? fields.relayUrl : undefined
  if (
    fields.tunnelMode === 'synthtunnel' &&
    relayUrl === undefined &&
    isLocalUrl(backendOf(fields.backendUrl, env))
  ) {
    throw usage(
      'optimize',
      '--tunnel synthtunnel with a backend on this machine needs a relay: --relay-url <url> (e.g. one started with `taskapp relay`), or TASKAPP_RELAY_URL.',
    )
  }
  const defined = Object.fromEntries(
    Object.entries({ ...fields, relayUrl }).filter(([, v]) => v !== undefined),
  )
  return {
    command: 'optimize',
    config,
    app,
    ...(defined as Omit<OptimizeCommand, 'command' | 'config' | 'app' | 'logLevel'>),
    logLevel: verbose ? 'debug' : fields.logLevel,
  }
}

/** The signing key: `--signing-key-file`, else `SYNTH_CONTAINER_AUTH_PRIVATE_KEY`; none with `--generate-signing-key`. */
function signingKeyOf(
  file: string | undefined,
  generate: boolean,
  env: CliEnv,
  warn: (line: string) => void,
): Pick<DevBackendCommand, 'signingKey' | 'signingKeyFrom'> {
  if (file !== undefined && generate) {
    throw usage('dev-backend', '--signing-key-file and --generate-signing-key are both given; give one.')
  }
  if (file !== undefined) {
    const key = readSecretFile(
      file,
      { multiple: false },
      flagContext('dev-backend', '--signing-key-file'),
      warn,
    )
    return { signingKey: key as string, signingKeyFrom: 'file' }
  }
  const fromEnv = env.SYNTH_CONTAINER_AUTH_PRIVATE_KEY?.trim()
  if (generate || !fromEnv) return {}
  return { signingKey: fromEnv, signingKeyFrom: 'env' }
}

/**
 * Parses `taskapp dev-backend` (after the command name).
 *
 * @example
 * ```ts
 * parseDevBackend(['--deterministic-model', '--generate-signing-key'], process.env, {})
 * ```
 */
export function parseDevBackend(
  args: readonly string[],
  env: CliEnv,
  hooks: FlagHooks,
): DevBackendCommand | { command: 'help'; topic: 'dev-backend' } {
  const parsed = flagsOrHelp('dev-backend', DEV_BACKEND_FLAGS, args)
  if (parsed === undefined) return { command: 'help', topic: 'dev-backend' }
  if (parsed.positionals.length > 0)
    throw usage('dev-backend', `takes no positional arguments, got: ${parsed.positionals.join(' ')}.`)
  const { values, sources } = resolveFlags('dev-backend', DEV_BACKEND_FLAGS, parsed.given, env, hooks)
  const { verbose, ...fields } = values
  if (fields.deterministicModel && sources.upstreamUrl === 'flag') {
    throw usage('dev-backend', '--deterministic-model and --upstream-url are both given; give one model.')
  }
  if (!fields.deterministicModel && fields.upstreamUrl === undefined) {
    throw usage(
      'dev-backend',
      'give a model: --deterministic-model (built in, offline, no weights) or --upstream-url <url> (an OpenAI-compatible endpoint, or TASKAPP_UPSTREAM_URL).',
    )
  }
  const upstream = !fields.deterministicModel
  for (const [name, source] of [
    ['upstream-api-key', sources.upstreamApiKey],
    ['upstream-model', sources.upstreamModel],
  ] as const) {
    if (!upstream && (source === 'flag' || source === 'file'))
      throw usage(
        'dev-backend',
        `--${name} only applies to --upstream-url (the model is the deterministic one).`,
      )
  }
  const signing = signingKeyOf(
    fields.signingKeyFile,
    fields.generateSigningKey,
    env,
    hooks.warn ?? (() => undefined),
  )
  const keyFrom = sources.upstreamApiKey
  return {
    command: 'dev-backend',
    port: fields.port,
    host: fields.host,
    allowNonLoopback: fields.allowNonLoopback,
    deterministicModel: fields.deterministicModel,
    ...(upstream && fields.upstreamUrl !== undefined && { upstreamUrl: fields.upstreamUrl }),
    ...(upstream && fields.upstreamApiKey !== undefined && { upstreamApiKey: fields.upstreamApiKey }),
    ...(upstream &&
      fields.upstreamApiKey !== undefined &&
      keyFrom !== 'default' && { upstreamApiKeyFrom: keyFrom }),
    ...(upstream && fields.upstreamModel !== undefined && { upstreamModel: fields.upstreamModel }),
    apiKeys: fields.apiKeys,
    ...(sources.apiKeys !== 'default' && { apiKeysFrom: sources.apiKeys }),
    ...(fields.signingKeyFile !== undefined && { signingKeyFile: fields.signingKeyFile }),
    generateSigningKey: fields.generateSigningKey,
    ...(fields.signingKeyId !== undefined && { signingKeyId: fields.signingKeyId }),
    ...signing,
    json: fields.json,
    logLevel: verbose ? 'debug' : fields.logLevel,
  }
}
