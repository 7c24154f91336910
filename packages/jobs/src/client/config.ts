/**
 * From a TOML file (or a config object) and dot-notation overrides to what a create body needs,
 * following synth-ai's G3 builder (`sdk/optimization/internal/builders.py`, driven by
 * `PromptLearningJob._build_payload`): merge the overrides, find the task app URL, check the
 * algorithm and its seeds, normalise the backend's rollout health-check mode.
 */
import { readFile } from 'node:fs/promises'
import { parse as parseToml, TomlError } from 'smol-toml'
import { messageOf } from '@taskapp/core'
import { invalidConfig } from '../errors'
import { isSynthTunnelUrl, type CreateInput, type JobAlgorithm } from '../wire'
import { cloneValue, deepUpdate, isPlainObject, keyPaths, type PlainObject } from './merge'
import { checkSeeds, normalizeHealthChecks } from './config-checks'

/** What the config builder produces: a create input plus the task app URL it found. */
export interface JobPlan extends CreateInput {
  /** The task app (container) URL, or undefined when the config names a `container_id` instead. */
  readonly containerUrl: string | undefined
  /** Whether {@link containerUrl} is a SynthTunnel URL (the worker token then goes on create). */
  readonly synthTunnel: boolean
}

const invalid = invalidConfig

/** Reads and parses the TOML at `configPath`; errors name `configPath` and say what is wrong. */
export async function readTomlConfig(configPath: string, signal?: AbortSignal): Promise<PlainObject> {
  let text: string
  try {
    text = await readFile(configPath, { encoding: 'utf8', signal })
  } catch (err) {
    if (signal?.aborted) throw signal.reason
    throw invalid(`configPath: cannot read ${JSON.stringify(configPath)}: ${messageOf(err)}.`, err)
  }
  try {
    return parseToml(text)
  } catch (err) {
    const where = err instanceof TomlError ? ` at line ${err.line}, column ${err.column}` : ''
    throw invalid(
      `configPath: ${JSON.stringify(configPath)} is not valid TOML${where}: ${messageOf(err).split('\n')[0]}.`,
      err,
    )
  }
}

/** The parts of the overrides synth-ai reads itself rather than merging into the config. */
interface SplitOverrides {
  readonly taskUrl: string | undefined
  readonly metadata: PlainObject
  readonly autoStart: boolean
  readonly configOverrides: PlainObject
}

const RESERVED_OVERRIDES = ['backend', 'task_url', 'metadata', 'auto_start', 'container_api_key']

/** Splits the (already nested) overrides as synth-ai does (builder step 6); `issues` collects problems. */
function splitOverrides(o: PlainObject, issues: string[]): SplitOverrides {
  const taskUrl = o.task_url
  if (taskUrl !== undefined && typeof taskUrl !== 'string')
    issues.push('overrides.task_url must be a URL string')
  const metadata = o.metadata ?? {}
  if (!isPlainObject(metadata)) issues.push('overrides.metadata must be an object')
  const autoStart = o.auto_start ?? true
  if (typeof autoStart !== 'boolean') issues.push('overrides.auto_start must be true or false')
  const source = isPlainObject(o.overrides) ? o.overrides : o
  const configOverrides: PlainObject = {}
  for (const [k, v] of Object.entries(source)) if (!RESERVED_OVERRIDES.includes(k)) configOverrides[k] = v
  const prefix = source === o ? 'overrides' : 'overrides.overrides'
  for (const path of [...keyPaths(source)]) {
    const segments = path.split('.')
    if (segments.some((s) => s === 'container_api_key' || s === 'container_api_keys')) {
      issues.push(
        `${prefix}.${path}: container API keys are not sent to the backend (it signs container tokens)`,
      )
    } else if (segments[0] === 'policy_optimization') {
      issues.push(`${prefix}.${path}: policy_optimization is not accepted; use prompt_learning`)
    }
  }
  return {
    taskUrl: typeof taskUrl === 'string' ? taskUrl.trim() : undefined,
    metadata: isPlainObject(metadata) ? metadata : {},
    autoStart: autoStart !== false,
    configOverrides,
  }
}

/** `config` with `prompt_learning` (a bare table is wrapped), or the reason why not. */
function wrapConfig(raw: PlainObject, issues: string[]): PlainObject {
  if ('policy_optimization' in raw)
    issues.push('policy_optimization: not accepted; use a [prompt_learning] table')
  if (!('prompt_learning' in raw)) return { prompt_learning: raw }
  if ('algorithm' in raw) issues.push('algorithm: belongs in [prompt_learning] (prompt_learning.algorithm)')
  return raw
}

function algorithmOf(pl: PlainObject, issues: string[]): JobAlgorithm {
  const value = pl.algorithm
  if (value === 'gepa' || value === 'mipro') return value
  if (value === 'voyager') return 'mipro'
  issues.push(
    value === undefined
      ? 'prompt_learning.algorithm is required: "gepa" or "mipro"'
      : `prompt_learning.algorithm must be "gepa" or "mipro"; got ${JSON.stringify(value)}`,
  )
  return 'gepa'
}

/** The task app URL (builder step 4): `overrides.task_url`, else `container_url`, else `task_app_url`. */
function containerUrlOf(pl: PlainObject, taskUrl: string | undefined, issues: string[]): string | undefined {
  const candidates: ReadonlyArray<readonly [string, unknown]> = [
    ['overrides.task_url', taskUrl],
    ['prompt_learning.container_url', pl.container_url],
    ['prompt_learning.task_app_url', pl.task_app_url],
  ]
  const found = candidates.find(([, v]) => v !== undefined && v !== null && v !== '')
  if (found === undefined) {
    if (typeof pl.container_id === 'string' && pl.container_id.trim() !== '') return undefined
    issues.push(
      'the task app URL is missing: pass overrides.task_url (or "prompt_learning.container_url"), or set prompt_learning.container_url in the config',
    )
    return undefined
  }
  const [field, value] = found
  const url = typeof value === 'string' ? value.trim().replace(/\/+$/, '') : ''
  let ok: boolean
  try {
    const parsed = new URL(url)
    ok = parsed.protocol === 'http:' || parsed.protocol === 'https:'
  } catch {
    ok = false
  }
  if (!ok) issues.push(`${field} must be an http(s) URL; got ${JSON.stringify(value)}`)
  return ok ? url : undefined
}

/** Removes `container_api_key(s)` from the config (the builder strips them before sending). */
function stripContainerKeys(config: PlainObject): void {
  for (const table of [config, config.prompt_learning]) {
    if (!isPlainObject(table)) continue
    delete table.container_api_key
    delete table.container_api_keys
  }
}

/** Inputs of {@link buildJobPlan}. */
export interface BuildPlanInput {
  /** The parsed TOML or the caller's config object (not modified). */
  readonly raw: unknown
  /** The caller's overrides (dot keys allowed; not modified). */
  readonly overrides: unknown
  /** `<root>/api`, sent as `metadata.backend_base_url`. */
  readonly apiBase: string
  /** The SynthTunnel worker token, when the caller has one. */
  readonly workerToken: string | undefined
  /** `configPath` or `config`, for messages. */
  readonly source: string
}

/**
 * The validated create input for a config and its overrides; throws one
 * `TASKAPP_ERR_JOBS_INVALID_CONFIG` naming every bad field it found.
 */
export function buildJobPlan(input: BuildPlanInput): JobPlan {
  if (!isPlainObject(input.raw)) throw invalid(`${input.source} must be an object (a TOML table)`)
  if (input.overrides !== undefined && !isPlainObject(input.overrides)) {
    throw invalid(
      'overrides must be an object of dot-notation keys, e.g. { "prompt_learning.gepa.rollout.budget": 8 }',
    )
  }
  const issues: string[] = []
  const o = deepUpdate({}, input.overrides ?? {})
  const split = splitOverrides(o, issues)
  const config = wrapConfig(cloneValue(input.raw) as PlainObject, issues)
  deepUpdate(config, split.configOverrides)
  const pl = config.prompt_learning
  if (!isPlainObject(pl)) throw invalid(`prompt_learning must be a table in ${input.source}`)
  const algorithm = algorithmOf(pl, issues)
  const containerUrl = containerUrlOf(pl, split.taskUrl, issues)
  if (containerUrl !== undefined) pl.container_url = containerUrl
  if (pl.algorithm !== undefined && issues.every((i) => !i.startsWith('prompt_learning.algorithm'))) {
    checkSeeds(pl, algorithm, issues)
  }
  normalizeHealthChecks(pl, issues)
  stripContainerKeys(config)
  const synthTunnel = containerUrl !== undefined && isSynthTunnelUrl(containerUrl)
  if (synthTunnel && !input.workerToken) {
    issues.push(
      `workerToken is required: the task app URL ${containerUrl} is a SynthTunnel URL (pass the tunnel's worker token, e.g. InProcessTaskApp's app.taskAppWorkerToken)`,
    )
  }
  if (issues.length > 0) {
    throw invalid(`Invalid job config (${input.source}): ${issues.join('; ')}.`)
  }
  return {
    algorithm,
    config: config as JobPlan['config'],
    metadata: { ...split.metadata, backend_base_url: input.apiBase },
    autoStart: split.autoStart,
    containerUrl,
    synthTunnel,
  }
}
