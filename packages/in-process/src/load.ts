import { randomBytes } from 'node:crypto'
import { extname } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createTaskApp } from '@taskapp/task-server'
import type { ContainerAuthConfig, TaskAppConfig } from '@taskapp/task-server'
import { safeLog } from '@taskapp/core'
import { InProcessError, messageOf } from './errors'
import { redact } from './logger'
import type { Logger } from './logger'
import type { ResolvedOptions } from './options'
import type { AppLike, AppLifecycle } from './option-types'
import { importTypeScript } from './ts-import'

/** What the in-process options add to a task-app config (they win over the config). */
export interface AppOverrides {
  readonly apiKey: string | undefined
  readonly containerAuth?: ContainerAuthConfig | undefined
  readonly logger: Logger | undefined
}

/** The app to serve, with the key the health check must send. */
export interface ResolvedApp {
  readonly listener: AppLike
  readonly lifecycle: AppLifecycle | undefined
  /**
   * The key the app accepts: undefined for a ready-made app when none was configured, and for an
   * app that verifies container tokens when no key was given anywhere (token-only: no key is
   * generated, so a relay agent has none to inject).
   */
  readonly apiKey: string | undefined
  /** True when the key was generated for this run. */
  readonly generatedKey: boolean
  /**
   * True when a caller without a container token must send `apiKey`: an app built from a config
   * with `requireApiKey` on (the default), or a ready-made app given a key (the health check sends
   * it, so the app is taken to want it).
   */
  readonly callerNeedsKey: boolean
  /** Where the app came from, for logs. */
  readonly source: string
  /**
   * True when the app verifies container tokens: trusted keys in `containerAuth.trustedKeys` or
   * `SYNTH_CONTAINER_TRUSTED_PUBKEYS`, and a mode other than `disabled`. For a ready-made app only
   * the environment is known.
   */
  readonly containerAuth: boolean
  /** True when the app accepts unsigned calls from loopback (`optional_local`); see {@link acceptsUnsignedLocalCalls}. */
  readonly unsignedLocalCalls: boolean
}

/**
 * Whether a task app built from `config` (undefined: a ready-made app) verifies container tokens,
 * by the rules of task-server's `resolveContainerAuth` (the config wins over the environment).
 * @internal
 */
export function usesContainerAuth(
  config: ContainerAuthConfig | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  const keys = config?.trustedKeys ?? env.SYNTH_CONTAINER_TRUSTED_PUBKEYS
  const present = Array.isArray(keys) ? keys.length > 0 : typeof keys === 'string' && keys.trim() !== ''
  if (!present) return false
  const mode = config?.mode ?? env.SYNTH_CONTAINER_AUTH_MODE?.trim().toLowerCase()
  return mode !== 'disabled'
}

/**
 * True when the app would accept unsigned calls from loopback (`containerAuth.mode` or
 * `SYNTH_CONTAINER_AUTH_MODE` is `optional_local`, with trusted keys): safe only without a tunnel,
 * since cloudflared, the relay agent and reverse proxies all reach the app from loopback.
 */
export function acceptsUnsignedLocalCalls(
  config: ContainerAuthConfig | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  if (!usesContainerAuth(config, env)) return false
  const mode = config?.mode ?? env.SYNTH_CONTAINER_AUTH_MODE?.trim().toLowerCase()
  return mode === 'optional_local'
}

/** Export names looked up in a task-app file, in order. */
export const TASK_APP_EXPORTS = ['default', 'app', 'buildConfig', 'config'] as const

/** Imports a module; `.ts`/`.mts` through tsx, as ESM. Swappable in tests. */
export type ModuleImporter = (path: string) => Promise<Record<string, unknown>>

export const importTaskAppModule: ModuleImporter = async (path) => {
  const ext = extname(path).toLowerCase()
  if (ext === '.ts' || ext === '.mts') return importTypeScript(path)
  return (await import(pathToFileURL(path).href)) as Record<string, unknown>
}

function isAppLike(value: unknown): value is AppLike {
  if (typeof value !== 'function') return false
  const v = value as unknown as Record<string, unknown>
  // Express apps have handle/listen; createTaskApp apps have lifecycle; bare listeners take (req, res).
  return (
    typeof v.handle === 'function' ||
    typeof v.listen === 'function' ||
    typeof v.lifecycle === 'object' ||
    value.length >= 2
  )
}

function lifecycleOf(app: AppLike): AppLifecycle | undefined {
  const lifecycle = (app as { lifecycle?: unknown }).lifecycle
  return typeof lifecycle === 'object' && lifecycle !== null ? lifecycle : undefined
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'function') return `a function of ${value.length} parameter(s)`
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

function envAliases(): string[] {
  return (process.env.ENVIRONMENT_API_KEY_ALIASES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
}

function generateKey(): string {
  return `tk_${randomBytes(24).toString('base64url')}`
}

/** Builds the app from a config, making sure the server accepts the key the health check sends. */
function fromConfig(given: TaskAppConfig, overrides: AppOverrides, source: string): ResolvedApp {
  const { apiKey, logger } = overrides
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new InProcessError(
      'TASKAPP_ERR_TASK_APP_INVALID',
      `${source} gave ${describe(given)}, not a TaskAppConfig object.`,
    )
  }
  const config: TaskAppConfig =
    overrides.containerAuth === undefined
      ? given
      : { ...given, containerAuth: { ...given.containerAuth, ...overrides.containerAuth } }
  const tokens = usesContainerAuth(config.containerAuth)
  const { key, generatedKey, apiKeys } = keysFor(config, apiKey, tokens)
  let app: AppLike
  try {
    app = createTaskApp({
      ...config,
      apiKeys,
      ...(config.logger === undefined && logger ? { logger } : {}),
    })
  } catch (err) {
    throw new InProcessError(
      'TASKAPP_ERR_TASK_APP_INVALID',
      `${source}: createTaskApp rejected the config: ${messageOf(err)}`,
      {
        cause: err,
      },
    )
  }
  return {
    listener: app,
    lifecycle: lifecycleOf(app),
    apiKey: key,
    generatedKey,
    callerNeedsKey: key !== undefined && config.requireApiKey !== false,
    source,
    containerAuth: tokens,
    unsignedLocalCalls: acceptsUnsignedLocalCalls(config.containerAuth),
  }
}

/**
 * The keys the app accepts and the one the health check sends: the given key, else the config's
 * first, else (an app that verifies container tokens) none, else a generated one. Without
 * `apiKeys` in the config, the environment's keys stay accepted.
 */
function keysFor(
  config: TaskAppConfig,
  apiKey: string | undefined,
  tokens: boolean,
): { key: string | undefined; generatedKey: boolean; apiKeys: readonly string[] } {
  const configured: readonly string[] | undefined =
    config.apiKeys === undefined ? undefined : [...config.apiKeys]
  const fromEnv = [
    ...(process.env.ENVIRONMENT_API_KEY ? [process.env.ENVIRONMENT_API_KEY] : []),
    ...envAliases(),
  ]
  let key = apiKey ?? configured?.[0]
  if (key === undefined && tokens) return { key, generatedKey: false, apiKeys: configured ?? fromEnv }
  const generatedKey = key === undefined
  key ??= generateKey()
  const apiKeys = [...new Set([...(configured ?? []), key, ...(configured ? [] : fromEnv)])]
  return { key, generatedKey, apiKeys }
}

function fromApp(app: AppLike, overrides: AppOverrides, source: string): ResolvedApp {
  if (overrides.containerAuth !== undefined) {
    throw new InProcessError(
      'TASKAPP_ERR_INVALID_OPTIONS',
      `The containerAuth option applies to a task-app config, but ${source} is a ready-made app: ` +
        'set containerAuth in the config you build it from (or SYNTH_CONTAINER_TRUSTED_PUBKEYS).',
    )
  }
  const { apiKey } = overrides
  return {
    listener: app,
    lifecycle: lifecycleOf(app),
    apiKey,
    generatedKey: false,
    callerNeedsKey: apiKey !== undefined,
    source,
    containerAuth: usesContainerAuth(undefined),
    unsignedLocalCalls: acceptsUnsignedLocalCalls(undefined),
  }
}

async function callFactory(factory: () => unknown, source: string): Promise<unknown> {
  try {
    return await factory()
  } catch (err) {
    throw new InProcessError('TASKAPP_ERR_TASK_APP_LOAD_FAILED', `${source} threw: ${messageOf(err)}`, {
      cause: err,
    })
  }
}

/** Interprets one export (or what a factory returned): an app, a config, or a factory of either. */
async function fromValue(
  value: unknown,
  source: string,
  overrides: AppOverrides,
  depth = 0,
): Promise<ResolvedApp> {
  if (isAppLike(value)) return fromApp(value, overrides, source)
  if (typeof value === 'function' && depth === 0) {
    const produced = await callFactory(value as () => unknown, `${source}()`)
    return fromValue(produced, `${source}()`, overrides, depth + 1)
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return fromConfig(value as TaskAppConfig, overrides, source)
  }
  throw new InProcessError(
    'TASKAPP_ERR_TASK_APP_INVALID',
    `${source} is ${describe(value)}: expected a TaskAppConfig, an Express app or (req, res) listener, or a function returning one.`,
  )
}

/**
 * Turns the validated input into a request listener, importing the file when there is one.
 * @internal
 */
export async function resolveApp(
  input: ResolvedOptions['input'],
  options: AppOverrides & { importer?: ModuleImporter },
): Promise<ResolvedApp> {
  switch (input.kind) {
    case 'app':
      return fromApp(input.app, options, 'app')
    case 'config':
      return fromConfig(input.config, options, 'config')
    case 'configFactory': {
      const config = await callFactory(input.configFactory, 'configFactory()')
      if (isAppLike(config)) return fromApp(config, options, 'configFactory()')
      return fromConfig(config as TaskAppConfig, options, 'configFactory()')
    }
    case 'taskAppPath': {
      let mod: Record<string, unknown>
      try {
        mod = await (options.importer ?? importTaskAppModule)(input.path)
      } catch (err) {
        if (err instanceof InProcessError) throw err // TASKAPP_ERR_TSX_MISSING says what to do
        throw new InProcessError(
          'TASKAPP_ERR_TASK_APP_LOAD_FAILED',
          `Could not load task app file ${input.path}: ${messageOf(err)}`,
          { cause: err },
        )
      }
      // A CommonJS file imported as ESM puts module.exports under `default`.
      const def = mod.default
      if (
        typeof def === 'object' &&
        def !== null &&
        !('rollout' in def) &&
        TASK_APP_EXPORTS.some((name) => name !== 'default' && name in def)
      ) {
        mod = def as Record<string, unknown>
      }
      for (const name of TASK_APP_EXPORTS) {
        const value = mod[name]
        if (value === undefined) continue
        const source = `${input.path} export '${name}'`
        if (name === 'buildConfig' && typeof value === 'function') {
          const produced = await callFactory(value as () => unknown, `${source}()`)
          return fromValue(produced, `${source}()`, options, 1)
        }
        return fromValue(value, source, options)
      }
      const found = Object.keys(mod)
      throw new InProcessError(
        'TASKAPP_ERR_TASK_APP_INVALID',
        `Task app file ${input.path} has no usable export: expected one of ${TASK_APP_EXPORTS.join(', ')}; ` +
          `found ${found.length > 0 ? found.join(', ') : 'no exports'}.`,
      )
    }
  }
}

/**
 * Refuses `optional_local` container auth behind a tunnel: every tunnel (relay agent, cloudflared,
 * a reverse proxy) reaches the app from loopback, so unsigned local calls would be open to anyone
 * with the public URL.
 */
export function assertTunnelFitsAuth(resolved: ResolvedApp, tunnelMode: string): void {
  if (resolved.unsignedLocalCalls && tunnelMode !== 'local') {
    throw new InProcessError(
      'TASKAPP_ERR_INVALID_OPTIONS',
      `Container auth mode 'optional_local' accepts unsigned calls from loopback, and a tunnel ` +
        `(${tunnelMode}) reaches the app from loopback too, so anyone with the public URL would get in. ` +
        "Use tunnel: { mode: 'local' }, or containerAuth.mode 'required' (SYNTH_CONTAINER_AUTH_MODE=required).",
    )
  }
}

/** The checks and the log line once the app is resolved: {@link assertTunnelFitsAuth}, then a generated key's notice. */
export function checkResolvedApp(resolved: ResolvedApp, tunnelMode: string, logger: Logger): void {
  assertTunnelFitsAuth(resolved, tunnelMode)
  if (resolved.generatedKey) {
    safeLog(
      logger,
      'info',
      { apiKey: redact(resolved.apiKey) },
      'no API key given: generated one for this run (app.apiKey)',
    )
  }
}
