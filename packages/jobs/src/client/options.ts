/** Checking `PromptLearningJob.fromConfig` options and filling in their defaults. */
import { CoreError, messageOf, resolveSynthBackendUrl } from '@taskapp/core'
import type { Dispatcher } from 'undici'
import { invalidConfig } from '../errors'
import type { PromptLearningJobOptions } from './types'

/** The options once checked, with defaults applied. */
export interface ResolvedOptions {
  /** Backend root without `/api` (requests go to `${root}/api/...`). */
  readonly root: string
  readonly apiKey: string
  readonly workerToken: string | undefined
  readonly pollIntervalMs: number
  readonly requestTimeoutMs: number
  readonly streamIdleTimeoutMs: number
  readonly maxStreamFailures: number
  readonly dispatcher: Dispatcher | undefined
}

const KNOWN: ReadonlySet<string> = new Set([
  'configPath',
  'config',
  'backendUrl',
  'apiKey',
  'workerToken',
  'overrides',
  'env',
  'pollIntervalMs',
  'requestTimeoutMs',
  'streamIdleTimeoutMs',
  'maxStreamFailures',
  'dispatcher',
  'signal',
])

const invalid = invalidConfig

function positiveInt(
  options: PromptLearningJobOptions,
  key: keyof PromptLearningJobOptions,
  fallback: number,
): number {
  const value = options[key]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw invalid(
      `${key} must be a positive integer (milliseconds or a count); got ${JSON.stringify(value)}.`,
    )
  }
  return value
}

function optionalString(
  options: PromptLearningJobOptions,
  key: 'apiKey' | 'workerToken' | 'configPath',
): string | undefined {
  const value = options[key]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.trim() === '') throw invalid(`${key} must be a non-empty string.`)
  return value.trim()
}

/**
 * The backend root without `/api`: {@link resolveSynthBackendUrl} (which drops a trailing `/` and
 * `/api`), then a trailing `/v1` and `/api` dropped too, so `https://host/api/v1` gives `https://host`.
 */
export function backendRoot(options: PromptLearningJobOptions): string {
  let url: string
  try {
    url = resolveSynthBackendUrl({
      backendUrl: options.backendUrl,
      ...(options.env ? { env: options.env } : {}),
    }).url
  } catch (err) {
    if (err instanceof CoreError) throw invalid(messageOf(err), err)
    throw err
  }
  return url
    .replace(/\/v1$/, '')
    .replace(/\/+$/, '')
    .replace(/\/api$/, '')
    .replace(/\/+$/, '')
}

/** Checks the options that are not the config itself; throws `TASKAPP_ERR_JOBS_INVALID_CONFIG` naming the option. */
export function resolveOptions(options: PromptLearningJobOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalid('PromptLearningJob.fromConfig takes an options object: { configPath } or { config }.')
  }
  const unknown = Object.keys(options).filter((k) => !KNOWN.has(k))
  if (unknown.length > 0) {
    throw invalid(`Unknown option(s) ${unknown.join(', ')}; the options are ${[...KNOWN].join(', ')}.`)
  }
  const hasPath = options.configPath !== undefined
  const hasConfig = options.config !== undefined
  if (hasPath === hasConfig) {
    throw invalid('Pass exactly one of configPath (a TOML file) and config (an object).')
  }
  optionalString(options, 'configPath')
  const env = options.env ?? process.env
  const apiKey = optionalString(options, 'apiKey') ?? env.SYNTH_API_KEY?.trim()
  if (!apiKey) throw invalid('apiKey is required: pass apiKey or set SYNTH_API_KEY.')
  return {
    root: backendRoot(options),
    apiKey,
    workerToken: optionalString(options, 'workerToken'),
    pollIntervalMs: positiveInt(options, 'pollIntervalMs', 5000),
    requestTimeoutMs: positiveInt(options, 'requestTimeoutMs', 30_000),
    streamIdleTimeoutMs: positiveInt(options, 'streamIdleTimeoutMs', 120_000),
    maxStreamFailures: positiveInt(options, 'maxStreamFailures', 3),
    dispatcher: options.dispatcher,
  }
}
