/**
 * The option types of `InProcessTaskApp`, derived from one const list of keys
 * ({@link OPTION_KEYS}), and the small types they use.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger, TunnelBackend } from '@taskapp/core'
import type { ContainerAuthConfig, TaskAppConfig } from '@taskapp/task-server'
import { DEPRECATED_TUNNEL_KEYS } from './tunnel-spec'
import type { TunnelMode, TunnelSpec } from './tunnel-spec'

/** What to do when the port is taken: bind the next free one, fail naming the holder, or stop the holder. */
export type PortConflictPolicy = 'next' | 'error' | 'kill'

/** Where an `InProcessTaskApp` is in its life (not the task server's readiness). */
export type InProcessTaskAppState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed'

/**
 * @deprecated Renamed {@link InProcessTaskAppState} (the task server's own state is
 * `TaskServerState`); this alias goes in the next minor.
 */
export type TaskAppState = InProcessTaskAppState

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
 * Every option of `InProcessTaskApp`, in documentation order. The options type is derived
 * from this list (a key missing here does not type-check), and validation refuses keys not in it.
 */
export const OPTION_KEYS = [
  'app',
  'config',
  'configFactory',
  'taskAppPath',
  'port',
  'host',
  'allowNonLoopback',
  'tunnel',
  'apiKey',
  'containerAuth',
  'healthCheckTimeoutMs',
  'onPortConflict',
  'verifyTunnel',
  'stopGraceMs',
  'onStart',
  'onStop',
  'logger',
  'signal',
  'handleSignals',
  ...(Object.keys(DEPRECATED_TUNNEL_KEYS) as (keyof typeof DEPRECATED_TUNNEL_KEYS)[]),
] as const

/** One of {@link OPTION_KEYS}. */
export type OptionKey = (typeof OPTION_KEYS)[number] | keyof typeof DEPRECATED_TUNNEL_KEYS

/** The type and doc of each option (all optional in {@link InProcessTaskAppOptions}). @internal */
export interface OptionTypes<TApp> {
  /** A ready-made app: an Express app (e.g. from `createTaskApp`) or any `(req, res)` listener. Served as is. */
  app: AppLike
  /** A task-app config; the app is `createTaskApp(config)` with the resolved API key added. */
  config: TaskAppConfig
  /** Returns the config (sync or async); called once per `start()`. */
  configFactory: () => TaskAppConfig | Promise<TaskAppConfig>
  /**
   * A `.ts`, `.mts`, `.js` or `.mjs` file. Its `default`, `app`, `buildConfig` or `config` export
   * is used, the first one present (see the README for the shapes accepted).
   */
  taskAppPath: string
  /**
   * Port to bind; 0 lets the OS choose.
   * @default 8114
   */
  port: number
  /**
   * Address to bind; loopback only unless `allowNonLoopback` is true.
   * @default '127.0.0.1'
   */
  host: string
  /**
   * Allow a non-loopback `host` such as `0.0.0.0` (reachable from other machines).
   * @default false
   */
  allowNonLoopback: boolean
  /**
   * How the app is reached from outside: a {@link TunnelSpec} (`{ mode: 'synthtunnel', relayUrl }`,
   * `{ mode: 'quick', install: true }`, `{ mode: 'local' }`, ...) or any {@link TunnelBackend}.
   * @default { mode: 'synthtunnel' }: the relay at TASKAPP_RELAY_URL, else, with SYNTH_API_KEY set, Synth's
   * hosted relay (SYNTH_BACKEND_URL_OVERRIDE, SYNTH_BACKEND_URL, else https://api.usesynth.ai)
   */
  tunnel: TunnelSpec | TunnelBackend
  /** @deprecated Use `tunnel: { mode }`. */
  tunnelMode: TunnelMode
  /** @deprecated Use `tunnel: { mode: 'preconfigured', url }`. */
  preconfiguredUrl: string
  /** @deprecated Use `tunnel: { mode: 'preconfigured', authHeader }`. */
  preconfiguredAuthHeader: string
  /** @deprecated Use `tunnel: { mode: 'preconfigured', authToken }`. */
  preconfiguredAuthToken: string
  /** @deprecated Use `tunnel: { mode: 'synthtunnel', relayUrl }`. */
  relayUrl: string
  /** @deprecated Use `tunnel: { mode: 'synthtunnel', relayApiKey }`. */
  relayApiKey: string
  /** @deprecated Use `tunnel: { mode: 'quick' | 'named', cloudflaredPath }`. */
  cloudflaredPath: string
  /** @deprecated Use `tunnel: { mode: 'named', token }`. */
  namedTunnelToken: string
  /** @deprecated Use `tunnel: { mode: 'named', hostname }`. */
  namedTunnelHostname: string
  /**
   * The task-app API key (ENVIRONMENT_API_KEY): added to the app's accepted keys and sent by the
   * health check. Without one anywhere, a random key is generated for this run (see `apiKey`).
   * @default process.env.ENVIRONMENT_API_KEY
   */
  apiKey: string
  /**
   * Container tokens of the newer Synth generation, merged over the config's `containerAuth` (these
   * fields win; unset ones fall back to the config, then to `SYNTH_CONTAINER_*`). Only for a config
   * input (`config`, `configFactory`, a file exporting a config): a ready-made app is built already.
   * With trusted keys and no `apiKey` anywhere, no key is generated: the app is token-only.
   * @example { trustedKeys: process.env.MY_SYNTH_PUBKEYS, mode: 'required' }
   */
  containerAuth: ContainerAuthConfig
  /**
   * Deadline for the app to answer `GET /health` healthy (and for `verifyTunnel`).
   * @default 30000
   */
  healthCheckTimeoutMs: number
  /**
   * What to do when `port` is taken.
   * @default 'next'
   */
  onPortConflict: PortConflictPolicy
  /**
   * After the tunnel opens, check that `GET <url>/health` answers healthy through it.
   * @default false
   */
  verifyTunnel: boolean
  /**
   * On stop, how long in-flight requests may run before their sockets are destroyed.
   * @default 5000
   */
  stopGraceMs: number
  /** Called once running (may be async); if it throws, start fails and everything is stopped. */
  onStart: (app: TApp) => void | Promise<void>
  /** Called first thing on stop (may be async); if it throws, the error is logged at WARN and stop goes on. */
  onStop: (app: TApp) => void | Promise<void>
  /**
   * A pino-compatible logger.
   * @default writes WARN and ERROR lines to stderr, nothing else
   */
  logger: Logger
  /** Aborting it stops the app (or aborts a start in progress). */
  signal: AbortSignal
  /**
   * Stop on SIGINT/SIGTERM (one shared handler for every instance), then exit the way Node would
   * have, unless the process has SIGINT/SIGTERM handlers of its own.
   * @default true
   */
  handleSignals: boolean
}

/**
 * Options of `InProcessTaskApp`, one per {@link OPTION_KEYS} entry. Give exactly one of
 * `app`, `config`, `configFactory`, `taskAppPath`.
 *
 * @example
 * ```ts
 * const options: InProcessTaskAppOptions<InProcessTaskApp> = { configFactory: buildConfig, tunnel: { mode: 'local' }, port: 0 }
 * ```
 */
export type InProcessTaskAppOptions<TApp = unknown> = {
  [K in keyof OptionTypes<TApp> as K extends OptionKey ? K : never]?: OptionTypes<TApp>[K]
}

// Compile-time check that the list and the types name the same keys, both ways.
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
const optionKeysMatchTypes: SameKeys<OptionKey, keyof OptionTypes<unknown>> = true
void optionKeysMatchTypes
