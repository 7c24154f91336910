import { statSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, resolve } from 'node:path'
import { isLoopbackHost } from '@taskapp/port-manager'
import type { TaskAppConfig } from '@taskapp/task-server'
import { InProcessError } from './errors'
import type { Logger } from './logger'
import type { TunnelBackend } from './tunnel'

/** How the app is reached from outside. */
export type TunnelMode = 'synthtunnel' | 'quick' | 'named' | 'local' | 'preconfigured'

/** The tunnel modes, in documentation order. */
export const TUNNEL_MODES: readonly TunnelMode[] = ['synthtunnel', 'quick', 'named', 'local', 'preconfigured']

/** What to do when the port is taken: bind the next free one, fail naming the holder, or stop the holder. */
export type PortConflictPolicy = 'next' | 'error' | 'kill'

/** Lifecycle state of an {@link InProcessTaskApp}. */
export type TaskAppState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed'

/** A plain `node:http` request listener (an Express app is one). */
export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void

/** The optional lifecycle of an app built by `createTaskApp` (`@taskapp/task-server`). */
export interface AppLifecycle {
  ready?(): Promise<void>
  close?(options?: { signal?: AbortSignal; graceMs?: number }): Promise<void>
}

/** A ready-made app: an Express app, a `createTaskApp` app, or any request listener. */
export type AppLike = RequestListener & { lifecycle?: AppLifecycle }

/**
 * Options of {@link InProcessTaskApp}. Give exactly one of `app`, `config`, `configFactory`,
 * `taskAppPath`.
 *
 * @example
 * ```ts
 * const options: InProcessTaskAppOptions<InProcessTaskApp> = { configFactory: buildConfig, tunnelMode: 'local', port: 0 }
 * ```
 */
export interface InProcessTaskAppOptions<TApp = unknown> {
  /** A ready-made app: an Express app (e.g. from `createTaskApp`) or any `(req, res)` listener. Served as is. */
  app?: AppLike
  /** A task-app config; the app is `createTaskApp(config)` with the resolved API key added. */
  config?: TaskAppConfig
  /** Returns the config (sync or async); called once per `start()`. */
  configFactory?: () => TaskAppConfig | Promise<TaskAppConfig>
  /**
   * A `.ts`, `.mts`, `.js` or `.mjs` file. Its `default`, `app`, `buildConfig` or `config` export
   * is used, the first one present (see the README for the shapes accepted).
   */
  taskAppPath?: string
  /**
   * Port to bind; 0 lets the OS choose.
   * @default 8114
   */
  port?: number
  /**
   * Address to bind; loopback only unless `allowNonLoopback` is true.
   * @default '127.0.0.1'
   */
  host?: string
  /**
   * Allow a non-loopback `host` such as `0.0.0.0` (reachable from other machines).
   * @default false
   */
  allowNonLoopback?: boolean
  /**
   * How the app is reached from outside. Ignored when `tunnel` is given.
   * @default 'synthtunnel'
   */
  tunnelMode?: TunnelMode
  /** Any {@link TunnelBackend}; wins over `tunnelMode`. */
  tunnel?: TunnelBackend
  /**
   * `preconfigured` mode: the public URL (trailing slash removed).
   * @default process.env.TASKAPP_URL
   */
  preconfiguredUrl?: string
  /** `preconfigured` mode: name of a header callers must send (goes into `headers` with the token). */
  preconfiguredAuthHeader?: string
  /** `preconfigured` mode: value of `preconfiguredAuthHeader`. */
  preconfiguredAuthToken?: string
  /**
   * `synthtunnel` mode: base URL of the relay.
   * @default process.env.TASKAPP_RELAY_URL, then process.env.SYNTH_BACKEND_URL
   */
  relayUrl?: string
  /**
   * `synthtunnel` mode: API key for the relay.
   * @default process.env.SYNTH_API_KEY
   */
  relayApiKey?: string
  /** `quick` / `named` modes: path of the `cloudflared` binary (else found by `@taskapp/tunnel-cloudflare`). */
  cloudflaredPath?: string
  /**
   * `named` mode: the tunnel token.
   * @default process.env.CLOUDFLARE_TUNNEL_TOKEN
   */
  namedTunnelToken?: string
  /**
   * `named` mode: the public hostname routed to the tunnel.
   * @default process.env.CLOUDFLARE_TUNNEL_HOSTNAME
   */
  namedTunnelHostname?: string
  /**
   * The task-app API key (ENVIRONMENT_API_KEY): added to the app's accepted keys and sent by the
   * health check. Without one anywhere, a random key is generated for this run (see `apiKey`).
   * @default process.env.ENVIRONMENT_API_KEY
   */
  apiKey?: string
  /**
   * Deadline for the app to answer `GET /health` healthy (and for `verifyTunnel`).
   * @default 30000
   */
  healthCheckTimeoutMs?: number
  /**
   * What to do when `port` is taken.
   * @default 'next'
   */
  onPortConflict?: PortConflictPolicy
  /**
   * After the tunnel opens, check that `GET <url>/health` answers healthy through it.
   * @default false
   */
  verifyTunnel?: boolean
  /**
   * On stop, how long in-flight requests may run before their sockets are destroyed.
   * @default 5000
   */
  stopGraceMs?: number
  /** Called once running (may be async); if it throws, start fails and everything is stopped. */
  onStart?: (app: TApp) => void | Promise<void>
  /** Called first thing on stop (may be async); if it throws, the error is logged at WARN and stop goes on. */
  onStop?: (app: TApp) => void | Promise<void>
  /**
   * A pino-compatible logger.
   * @default writes WARN and ERROR lines to stderr, nothing else
   */
  logger?: Logger
  /** Aborting it stops the app (or aborts a start in progress). */
  signal?: AbortSignal
  /**
   * Stop on SIGINT/SIGTERM (one shared handler for every instance), then exit the way Node would
   * have, unless the process has SIGINT/SIGTERM handlers of its own.
   * @default true
   */
  handleSignals?: boolean
}

/** Options after validation, with defaults applied. */
export interface ResolvedOptions {
  readonly input:
    | { kind: 'app'; app: AppLike }
    | { kind: 'config'; config: TaskAppConfig }
    | { kind: 'configFactory'; configFactory: () => TaskAppConfig | Promise<TaskAppConfig> }
    | { kind: 'taskAppPath'; path: string }
  readonly port: number
  readonly host: string
  readonly allowNonLoopback: boolean
  readonly tunnelMode: TunnelMode | 'custom'
  readonly tunnel: TunnelBackend | undefined
  readonly preconfiguredUrl: string | undefined
  readonly preconfiguredHeaders: Readonly<Record<string, string>> | undefined
  readonly relayUrl: string | undefined
  readonly relayApiKey: string | undefined
  readonly cloudflaredPath: string | undefined
  readonly namedTunnelToken: string | undefined
  readonly namedTunnelHostname: string | undefined
  readonly apiKey: string | undefined
  readonly healthCheckTimeoutMs: number
  readonly onPortConflict: PortConflictPolicy
  readonly verifyTunnel: boolean
  readonly stopGraceMs: number
  readonly onStart: ((app: never) => void | Promise<void>) | undefined
  readonly onStop: ((app: never) => void | Promise<void>) | undefined
  readonly logger: Logger | undefined
  readonly signal: AbortSignal | undefined
  readonly handleSignals: boolean
}

const KNOWN_KEYS = new Set([
  'app',
  'config',
  'configFactory',
  'taskAppPath',
  'port',
  'host',
  'allowNonLoopback',
  'tunnelMode',
  'tunnel',
  'preconfiguredUrl',
  'preconfiguredAuthHeader',
  'preconfiguredAuthToken',
  'relayUrl',
  'relayApiKey',
  'cloudflaredPath',
  'namedTunnelToken',
  'namedTunnelHostname',
  'apiKey',
  'healthCheckTimeoutMs',
  'onPortConflict',
  'verifyTunnel',
  'stopGraceMs',
  'onStart',
  'onStop',
  'logger',
  'signal',
  'handleSignals',
])

const INPUT_KEYS = ['app', 'config', 'configFactory', 'taskAppPath'] as const
const TASK_APP_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs']
const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

function invalid(message: string): InProcessError {
  return new InProcessError('TASKAPP_ERR_INVALID_OPTIONS', message)
}

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === null || typeof value !== 'object') return String(value)
  return Array.isArray(value) ? 'an array' : 'an object'
}

function optionalString(options: Record<string, unknown>, key: string): string | undefined {
  const value = options[key]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.trim() === '') {
    throw invalid(`Invalid ${key} ${show(value)}: expected a non-empty string.`)
  }
  return value
}

function optionalBoolean(options: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = options[key]
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalid(`Invalid ${key} ${show(value)}: expected true or false.`)
  return value
}

function optionalFunction<T>(options: Record<string, unknown>, key: string): T | undefined {
  const value = options[key]
  if (value === undefined) return undefined
  if (typeof value !== 'function') throw invalid(`Invalid ${key} ${show(value)}: expected a function.`)
  return value as T
}

function optionalDuration(
  options: Record<string, unknown>,
  key: string,
  fallback: number,
  min: number,
): number {
  const value = options[key]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw invalid(`Invalid ${key} ${show(value)}: expected a number of milliseconds >= ${min}.`)
  }
  return value
}

function envString(name: string): string | undefined {
  const value = process.env[name]
  return value === undefined || value.trim() === '' ? undefined : value
}

function validateHttpUrl(key: string, value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw invalid(`Invalid ${key} ${JSON.stringify(value)}: expected an absolute http(s) URL.`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(`Invalid ${key} ${JSON.stringify(value)}: expected an http:// or https:// URL.`)
  }
  return value.replace(/\/+$/, '')
}

function validateInput(options: Record<string, unknown>): ResolvedOptions['input'] {
  const given = INPUT_KEYS.filter((key) => options[key] !== undefined && options[key] !== null)
  if (given.length === 0) {
    throw new InProcessError(
      'TASKAPP_ERR_NO_INPUT',
      'No task app given: pass exactly one of app, config, configFactory or taskAppPath.',
    )
  }
  if (given.length > 1) {
    throw new InProcessError(
      'TASKAPP_ERR_MULTIPLE_INPUTS',
      `Several task apps given (${given.join(', ')}): pass exactly one of app, config, configFactory or taskAppPath.`,
    )
  }
  const key = given[0]!
  const value = options[key]
  switch (key) {
    case 'app':
      if (typeof value !== 'function') {
        throw invalid(`Invalid app ${show(value)}: expected an Express app or a (req, res) request listener.`)
      }
      return { kind: 'app', app: value as AppLike }
    case 'config':
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw invalid(`Invalid config ${show(value)}: expected a TaskAppConfig object.`)
      }
      return { kind: 'config', config: value as TaskAppConfig }
    case 'configFactory':
      if (typeof value !== 'function') {
        throw invalid(`Invalid configFactory ${show(value)}: expected a function returning a TaskAppConfig.`)
      }
      return { kind: 'configFactory', configFactory: value as () => TaskAppConfig }
    case 'taskAppPath': {
      if (typeof value !== 'string' || value.trim() === '') {
        throw invalid(
          `Invalid taskAppPath ${show(value)}: expected the path of a .ts, .mts, .js or .mjs file.`,
        )
      }
      const path = resolve(value)
      let isFile: boolean
      try {
        isFile = statSync(path).isFile()
      } catch (err) {
        throw new InProcessError(
          'TASKAPP_ERR_TASK_APP_NOT_FOUND',
          `Task app file ${path} does not exist. Check taskAppPath (relative paths are resolved from ${process.cwd()}).`,
          { cause: err },
        )
      }
      if (!isFile) {
        throw new InProcessError(
          'TASKAPP_ERR_TASK_APP_NOT_FOUND',
          `Task app path ${path} is not a file. Point taskAppPath at a .ts, .mts, .js or .mjs file.`,
        )
      }
      const ext = extname(path).toLowerCase()
      if (!TASK_APP_EXTENSIONS.includes(ext)) {
        throw new InProcessError(
          'TASKAPP_ERR_TASK_APP_INVALID',
          `Task app file ${path} has extension ${JSON.stringify(ext)}: expected .ts, .mts, .js or .mjs.`,
        )
      }
      return { kind: 'taskAppPath', path }
    }
  }
}

function validateLogger(value: unknown): Logger | undefined {
  if (value === undefined) return undefined
  const ok =
    typeof value === 'object' &&
    value !== null &&
    (['debug', 'info', 'warn', 'error'] as const).every(
      (level) => typeof (value as Record<string, unknown>)[level] === 'function',
    )
  if (!ok)
    throw invalid('Invalid logger: expected an object with debug, info, warn and error methods (pino works).')
  return value as Logger
}

function validateTunnel(value: unknown): TunnelBackend | undefined {
  if (value === undefined) return undefined
  const ok =
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { open?: unknown }).open === 'function' &&
    typeof (value as { name?: unknown }).name === 'string'
  if (!ok)
    throw invalid('Invalid tunnel: expected a TunnelBackend ({ name: string, open(target, { signal }) }).')
  return value as TunnelBackend
}

/**
 * Checks every option and applies defaults and environment fallbacks. Pure apart from reading
 * the environment and `stat`-ing `taskAppPath`: nothing is started.
 * @internal
 */
export function validateOptions(raw: unknown): ResolvedOptions {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalid(`Invalid options ${show(raw)}: expected an options object.`)
  }
  const options = raw as Record<string, unknown>
  const unknown = Object.keys(options).filter((key) => !KNOWN_KEYS.has(key))
  if (unknown.length > 0) {
    throw invalid(
      `Unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}. ` +
        'Options are camelCase (e.g. configFactory, tunnelMode, healthCheckTimeoutMs); see the README.',
    )
  }

  const input = validateInput(options)

  const port = options.port ?? 8114
  if (typeof port !== 'number' || !Number.isInteger(port) || (port !== 0 && (port < 1024 || port > 65535))) {
    throw new InProcessError(
      'TASKAPP_ERR_INVALID_PORT',
      `Invalid port ${show(port)}: expected an integer in [1024, 65535], or 0 to let the OS choose.`,
    )
  }

  const allowNonLoopback = optionalBoolean(options, 'allowNonLoopback', false)
  const host = options.host ?? '127.0.0.1'
  if (typeof host !== 'string' || host.trim() === '') {
    throw new InProcessError(
      'TASKAPP_ERR_INVALID_HOST',
      `Invalid host ${show(host)}: expected an address such as '127.0.0.1'.`,
    )
  }
  if (!allowNonLoopback && !isLoopbackHost(host)) {
    throw new InProcessError(
      'TASKAPP_ERR_INVALID_HOST',
      `Host '${host}' is not a loopback address, so the task app would be reachable from other machines. ` +
        "Use '127.0.0.1' (the default), or pass allowNonLoopback: true if you mean to expose it.",
    )
  }

  const tunnel = validateTunnel(options.tunnel)
  const mode = options.tunnelMode ?? 'synthtunnel'
  if (typeof mode !== 'string' || !(TUNNEL_MODES as readonly string[]).includes(mode)) {
    throw invalid(
      `Unknown tunnelMode ${show(mode)}: expected one of ${TUNNEL_MODES.map((m) => `'${m}'`).join(', ')}.`,
    )
  }
  const tunnelMode: TunnelMode | 'custom' = tunnel ? 'custom' : (mode as TunnelMode)

  let preconfiguredUrl = optionalString(options, 'preconfiguredUrl')
  const authHeader = optionalString(options, 'preconfiguredAuthHeader')
  const authToken = optionalString(options, 'preconfiguredAuthToken')
  if ((authHeader === undefined) !== (authToken === undefined)) {
    throw invalid('preconfiguredAuthHeader and preconfiguredAuthToken go together: pass both or neither.')
  }
  if (authHeader !== undefined && !HEADER_NAME_RE.test(authHeader)) {
    throw invalid(
      `Invalid preconfiguredAuthHeader ${JSON.stringify(authHeader)}: expected an HTTP header name.`,
    )
  }
  if (tunnelMode === 'preconfigured') {
    preconfiguredUrl ??= envString('TASKAPP_URL')
    if (preconfiguredUrl === undefined) {
      throw invalid("tunnelMode 'preconfigured' needs a URL: pass preconfiguredUrl or set TASKAPP_URL.")
    }
    preconfiguredUrl = validateHttpUrl('preconfiguredUrl', preconfiguredUrl)
  }

  let relayUrl = optionalString(options, 'relayUrl')
  let relayApiKey = optionalString(options, 'relayApiKey')
  if (tunnelMode === 'synthtunnel') {
    relayUrl ??= envString('TASKAPP_RELAY_URL') ?? envString('SYNTH_BACKEND_URL')
    relayApiKey ??= envString('SYNTH_API_KEY')
    if (relayUrl === undefined) {
      throw invalid(
        "tunnelMode 'synthtunnel' (the default) needs a relay: pass relayUrl or set TASKAPP_RELAY_URL " +
          "(or SYNTH_BACKEND_URL). For no tunnel at all, pass tunnelMode: 'local'.",
      )
    }
    relayUrl = validateHttpUrl('relayUrl', relayUrl)
  }

  const cloudflaredPath = optionalString(options, 'cloudflaredPath')
  let namedTunnelToken = optionalString(options, 'namedTunnelToken')
  let namedTunnelHostname = optionalString(options, 'namedTunnelHostname')
  if (tunnelMode === 'named') {
    namedTunnelToken ??= envString('CLOUDFLARE_TUNNEL_TOKEN')
    namedTunnelHostname ??= envString('CLOUDFLARE_TUNNEL_HOSTNAME')
    if (namedTunnelToken === undefined || namedTunnelHostname === undefined) {
      throw invalid(
        "tunnelMode 'named' needs a tunnel token and its hostname: pass namedTunnelToken and namedTunnelHostname " +
          '(or set CLOUDFLARE_TUNNEL_TOKEN and CLOUDFLARE_TUNNEL_HOSTNAME).',
      )
    }
  }

  const apiKey = optionalString(options, 'apiKey') ?? envString('ENVIRONMENT_API_KEY')
  const healthCheckTimeoutMs = optionalDuration(options, 'healthCheckTimeoutMs', 30_000, 1)
  const stopGraceMs = optionalDuration(options, 'stopGraceMs', 5_000, 0)
  const onPortConflict = options.onPortConflict ?? 'next'
  if (onPortConflict !== 'next' && onPortConflict !== 'error' && onPortConflict !== 'kill') {
    throw invalid(`Invalid onPortConflict ${show(onPortConflict)}: expected 'next', 'error' or 'kill'.`)
  }
  const verifyTunnel = optionalBoolean(options, 'verifyTunnel', false)
  const handleSignals = optionalBoolean(options, 'handleSignals', true)
  const onStart = optionalFunction<ResolvedOptions['onStart']>(options, 'onStart')
  const onStop = optionalFunction<ResolvedOptions['onStop']>(options, 'onStop')
  const logger = validateLogger(options.logger)
  const signal = options.signal
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalid(`Invalid signal ${show(signal)}: expected an AbortSignal.`)
  }

  return {
    input,
    port,
    host,
    allowNonLoopback,
    tunnelMode,
    tunnel,
    preconfiguredUrl,
    preconfiguredHeaders:
      authHeader !== undefined && authToken !== undefined ? { [authHeader]: authToken } : undefined,
    relayUrl,
    relayApiKey,
    cloudflaredPath,
    namedTunnelToken,
    namedTunnelHostname,
    apiKey,
    healthCheckTimeoutMs,
    onPortConflict,
    verifyTunnel,
    stopGraceMs,
    onStart,
    onStop,
    logger,
    signal,
    handleSignals,
  }
}
