import { statSync } from 'node:fs'
import { extname, resolve } from 'node:path'
import { environmentApiKey } from '@taskapp/core'
import { isLoopbackHost } from '@taskapp/port-manager'
import type { ContainerAuthConfig, TaskAppConfig } from '@taskapp/task-server'
import { InProcessError } from './errors'
import type { InProcessErrorDetails } from './errors'
import type { Logger } from './logger'
import { resolveTunnelOption } from './tunnel-spec'
import type { ResolvedTunnel } from './tunnel-spec'
import { OPTION_KEYS } from './option-types'
import type { AppLike, PortConflictPolicy } from './option-types'

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
  readonly tunnel: ResolvedTunnel
  readonly apiKey: string | undefined
  readonly containerAuth: ContainerAuthConfig | undefined
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

const KNOWN_KEYS: ReadonlySet<string> = new Set(OPTION_KEYS)

const INPUT_KEYS = ['app', 'config', 'configFactory', 'taskAppPath'] as const
const TASK_APP_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs']

type OptionFacts = Pick<InProcessErrorDetails, 'option' | 'env' | 'expected'>

function invalid(message: string, facts: OptionFacts = {}): InProcessError {
  return new InProcessError('TASKAPP_ERR_INVALID_OPTIONS', message, facts)
}

/** `Invalid <key> <value>: expected <expected>.`, with the facts on the error. */
function invalidValue(
  key: string,
  value: unknown,
  expected: string,
  env?: readonly string[],
): InProcessError {
  return invalid(`Invalid ${key} ${show(value)}: expected ${expected}.`, {
    option: key,
    expected,
    ...(env !== undefined && { env }),
  })
}

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'string') return JSON.stringify(value)
  if (value === null || typeof value !== 'object') return String(value)
  return Array.isArray(value) ? 'an array' : 'an object'
}

function optionalString(
  options: Record<string, unknown>,
  key: string,
  env?: readonly string[],
): string | undefined {
  const value = options[key]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.trim() === '') {
    throw invalidValue(key, value, 'a non-empty string', env)
  }
  return value
}

function optionalBoolean(options: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = options[key]
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalidValue(key, value, 'true or false')
  return value
}

function optionalFunction<T>(options: Record<string, unknown>, key: string): T | undefined {
  const value = options[key]
  if (value === undefined) return undefined
  if (typeof value !== 'function') throw invalidValue(key, value, 'a function')
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
    throw invalidValue(key, value, `a number of milliseconds >= ${min}`)
  }
  return value
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
        throw invalidValue(key, value, 'an Express app or a (req, res) request listener')
      }
      return { kind: 'app', app: value as AppLike }
    case 'config':
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw invalidValue(key, value, 'a TaskAppConfig object')
      }
      return { kind: 'config', config: value as TaskAppConfig }
    case 'configFactory':
      if (typeof value !== 'function') {
        throw invalidValue(key, value, 'a function returning a TaskAppConfig')
      }
      return { kind: 'configFactory', configFactory: value as () => TaskAppConfig }
    case 'taskAppPath': {
      if (typeof value !== 'string' || value.trim() === '') {
        throw invalidValue(key, value, 'the path of a .ts, .mts, .js or .mjs file')
      }
      const path = resolve(value)
      let isFile: boolean
      try {
        isFile = statSync(path).isFile()
      } catch (err) {
        throw new InProcessError(
          'TASKAPP_ERR_TASK_APP_NOT_FOUND',
          `Task app file ${path} does not exist. Check taskAppPath (relative paths are resolved from ${process.cwd()}).`,
          { cause: err, option: 'taskAppPath' },
        )
      }
      if (!isFile) {
        throw new InProcessError(
          'TASKAPP_ERR_TASK_APP_NOT_FOUND',
          `Task app path ${path} is not a file. Point taskAppPath at a .ts, .mts, .js or .mjs file.`,
          { option: 'taskAppPath', expected: 'a .ts, .mts, .js or .mjs file' },
        )
      }
      const ext = extname(path).toLowerCase()
      if (!TASK_APP_EXTENSIONS.includes(ext)) {
        throw new InProcessError(
          'TASKAPP_ERR_TASK_APP_INVALID',
          `Task app file ${path} has extension ${JSON.stringify(ext)}: expected .ts, .mts, .js or .mjs.`,
          { option: 'taskAppPath', expected: 'a .ts, .mts, .js or .mjs file' },
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
    throw invalid(
      'Invalid logger: expected an object with debug, info, warn and error methods (pino works).',
      {
        option: 'logger',
        expected: 'an object with debug, info, warn and error methods',
      },
    )
  return value as Logger
}

/**
 * Checks every option and applies defaults and environment fallbacks. Pure apart from reading
 * the environment and `stat`-ing `taskAppPath`: nothing is started.
 * @internal
 */
export function validateOptions(raw: unknown): ResolvedOptions {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalid(`Invalid options ${show(raw)}: expected an options object.`, {
      expected: 'an options object',
    })
  }
  const options = raw as Record<string, unknown>
  const unknown = Object.keys(options).filter((key) => !KNOWN_KEYS.has(key))
  if (unknown.length > 0) {
    throw invalid(
      `Unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}. ` +
        'Options are camelCase (e.g. configFactory, tunnel, healthCheckTimeoutMs); see the README.',
    )
  }

  const input = validateInput(options)

  const port = options.port ?? 8114
  if (typeof port !== 'number' || !Number.isInteger(port) || (port !== 0 && (port < 1024 || port > 65535))) {
    throw new InProcessError(
      'TASKAPP_ERR_INVALID_PORT',
      `Invalid port ${show(port)}: expected an integer in [1024, 65535], or 0 to let the OS choose.`,
      { option: 'port', expected: 'an integer in [1024, 65535], or 0 to let the OS choose' },
    )
  }

  const allowNonLoopback = optionalBoolean(options, 'allowNonLoopback', false)
  const host = options.host ?? '127.0.0.1'
  if (typeof host !== 'string' || host.trim() === '') {
    throw new InProcessError(
      'TASKAPP_ERR_INVALID_HOST',
      `Invalid host ${show(host)}: expected an address such as '127.0.0.1'.`,
      { option: 'host', expected: "an address such as '127.0.0.1'" },
    )
  }
  if (!allowNonLoopback && !isLoopbackHost(host)) {
    throw new InProcessError(
      'TASKAPP_ERR_INVALID_HOST',
      `Host '${host}' is not a loopback address, so the task app would be reachable from other machines. ` +
        "Use '127.0.0.1' (the default), or pass allowNonLoopback: true if you mean to expose it.",
      { option: 'host', expected: 'a loopback address, unless allowNonLoopback is true' },
    )
  }

  const tunnel = resolveTunnelOption(options)

  const apiKey = optionalString(options, 'apiKey', ['ENVIRONMENT_API_KEY']) ?? environmentApiKey(process.env)
  const containerAuth = options.containerAuth
  if (
    containerAuth !== undefined &&
    (typeof containerAuth !== 'object' || containerAuth === null || Array.isArray(containerAuth))
  ) {
    throw invalidValue(
      'containerAuth',
      containerAuth,
      "an object such as { trustedKeys: 'kid:BASE64', mode: 'required' }",
    )
  }
  const healthCheckTimeoutMs = optionalDuration(options, 'healthCheckTimeoutMs', 30_000, 1)
  const stopGraceMs = optionalDuration(options, 'stopGraceMs', 5_000, 0)
  const onPortConflict = options.onPortConflict ?? 'next'
  if (onPortConflict !== 'next' && onPortConflict !== 'error' && onPortConflict !== 'kill') {
    throw invalidValue('onPortConflict', onPortConflict, "'next', 'error' or 'kill'")
  }
  const verifyTunnel = optionalBoolean(options, 'verifyTunnel', false)
  const handleSignals = optionalBoolean(options, 'handleSignals', true)
  const onStart = optionalFunction<ResolvedOptions['onStart']>(options, 'onStart')
  const onStop = optionalFunction<ResolvedOptions['onStop']>(options, 'onStop')
  const logger = validateLogger(options.logger)
  const signal = options.signal
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalidValue('signal', signal, 'an AbortSignal')
  }

  return {
    input,
    port,
    host,
    allowNonLoopback,
    tunnel,
    apiKey,
    containerAuth: containerAuth,
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
