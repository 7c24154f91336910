/**
 * Reading a create request of any wire generation (G3 `{kind, config}`, G1/G2 `{algorithm,
 * config_body}`) into what the optimizer runs: the task app, the initial prompt, the policy, the
 * seeds and the search's limits.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { at, configError, firstOf, httpUrl, intAt, objectAt, seedList, stringAt } from './config-values'
import { isObject } from './http'

/** The algorithms a job may name; the local backend runs only `gepa`. */
export type Algorithm = 'gepa' | 'mipro'

/** One message of `initial_prompt.messages`, sorted by `order`. */
export interface PromptMessage {
  readonly role: string
  readonly pattern: string
}

/** How the task app's health is checked before the search (`rollout_health_check_mode`). */
export type HealthCheckMode = 'strict' | 'warn' | 'off'

/** Everything a GEPA run needs, read from the job's `prompt_learning` config. */
export interface GepaSpec {
  readonly containerUrl: string
  readonly containerApiKey?: string
  readonly workerToken?: string
  readonly initialMessages: readonly PromptMessage[]
  /** Index in `initialMessages` of the system message GEPA rewrites. */
  readonly optimizedIndex: number
  /** Wildcard names (`{name}` in patterns) whose values carry over into candidates. */
  readonly wildcards: readonly string[]
  readonly policyConfig: Readonly<Record<string, unknown>>
  readonly policyName?: string
  readonly envName?: string
  readonly envConfig: Readonly<Record<string, unknown>>
  readonly trainSeeds: readonly number[]
  readonly validationSeeds: readonly number[]
  /** Rollouts the whole job may use; `undefined`: as many as the schedule needs. */
  readonly budget?: number
  readonly maxConcurrent: number
  readonly minibatchSize: number
  readonly generations: number
  readonly childrenPerGeneration: number
  readonly randomSeed: number
  readonly healthCheck: HealthCheckMode
}

/** A create request, read. */
export interface JobRequest {
  readonly algorithm: Algorithm
  /** `gepa_offline`, `mipro_offline`, ... */
  readonly kind: string
  readonly autoStart: boolean
  readonly metadata: Readonly<Record<string, unknown>>
  readonly systemName: string
  /** The `prompt_learning` table as sent. */
  readonly config: Readonly<Record<string, unknown>>
  /** Set for GEPA jobs only (a MIPRO job is not read further: it fails at once). */
  readonly gepa?: GepaSpec
}

const PL = 'prompt_learning.'

function promptLearningOf(body: Record<string, unknown>): Record<string, unknown> {
  const outer = body.config ?? body.config_body
  if (!isObject(outer)) {
    throw configError(
      'config',
      'an object holding the prompt_learning table ({"config": {"prompt_learning": {...}}})',
    )
  }
  const table = outer.prompt_learning ?? outer
  if (!isObject(table)) throw configError('config.prompt_learning', 'a table (object)')
  return table
}

function algorithmOf(
  body: Record<string, unknown>,
  pl: Record<string, unknown>,
  routeAlgorithm?: Algorithm,
): Algorithm {
  const named =
    routeAlgorithm ??
    (typeof body.kind === 'string' ? body.kind.split('_')[0] : undefined) ??
    (typeof body.algorithm === 'string' ? body.algorithm : undefined) ??
    (typeof pl.algorithm === 'string' ? pl.algorithm : 'gepa')
  const lower = named.toLowerCase()
  if (lower === 'gepa') return 'gepa'
  if (lower === 'mipro' || lower === 'voyager') return 'mipro'
  throw configError('kind / algorithm', `"gepa" or "mipro" (got "${named}")`)
}

function initialMessages(pl: Record<string, unknown>): { messages: PromptMessage[]; optimizedIndex: number } {
  const raw = at(pl, 'initial_prompt.messages')
  const where = `${PL}initial_prompt.messages`
  if (!Array.isArray(raw) || raw.length === 0)
    throw configError(where, 'a non-empty list of {role, pattern, order}')
  const messages = raw.map((m: unknown, i) => {
    const text = isObject(m) ? (m.pattern ?? m.content) : undefined
    if (!isObject(m) || typeof m.role !== 'string' || typeof text !== 'string') {
      throw configError(`${where}[${i}]`, '{role: string, pattern: string, order?: integer}')
    }
    return { role: m.role, pattern: text, order: typeof m.order === 'number' ? m.order : i }
  })
  messages.sort((a, b) => a.order - b.order)
  const optimizedIndex = messages.findIndex((m) => m.role === 'system')
  if (optimizedIndex === -1) throw configError(where, 'a list with a system message (the text GEPA rewrites)')
  return { messages: messages.map(({ role, pattern }) => ({ role, pattern })), optimizedIndex }
}

function wildcardsOf(pl: Record<string, unknown>, messages: readonly PromptMessage[]): string[] {
  const names = new Set(
    Object.keys(objectAt(pl, 'initial_prompt.wildcards', `${PL}initial_prompt.wildcards`)),
  )
  for (const m of messages)
    for (const match of m.pattern.matchAll(/\{(\w+)\}/g)) names.add(match[1] as string)
  return [...names]
}

function seedsOf(pl: Record<string, unknown>): { train: number[]; validation: number[] } {
  const train = firstOf(pl, [
    'gepa.evaluation.train_seeds',
    'gepa.evaluation.seeds',
    'task_data.train_pools.reflection_seeds',
  ])
  const validation = firstOf(pl, [
    'gepa.evaluation.val_seeds',
    'gepa.evaluation.validation_seeds',
    'task_data.validation_pools.main_seeds',
    'task_data.validation_seeds',
  ])
  if (train === undefined)
    throw configError(`${PL}gepa.evaluation.seeds (or train_seeds)`, 'a non-empty list of train seeds')
  if (validation === undefined) {
    throw configError(
      `${PL}gepa.evaluation.validation_seeds (or val_seeds)`,
      'a non-empty list of validation seeds',
    )
  }
  const trainSeeds = seedList(train.value, PL + train.path)
  const pareto = at(pl, 'task_data.train_pools.pareto_seeds')
  if (train.path.startsWith('task_data') && pareto !== undefined) {
    trainSeeds.push(
      ...seedList(pareto, `${PL}task_data.train_pools.pareto_seeds`).filter((s) => !trainSeeds.includes(s)),
    )
  }
  const validationSeeds = seedList(validation.value, PL + validation.path)
  if (trainSeeds.length === 0) throw configError(PL + train.path, 'a non-empty list of seeds')
  if (validationSeeds.length === 0) throw configError(PL + validation.path, 'a non-empty list of seeds')
  return { train: trainSeeds, validation: validationSeeds }
}

function healthCheckOf(pl: Record<string, unknown>): HealthCheckMode {
  const found = firstOf(pl, [
    'rollout_health_check_mode',
    'backend_rollout_health_check_mode',
    'gepa.rollout_health_check_mode',
    'gepa.backend_rollout_health_check_mode',
  ])
  if (found === undefined) return 'warn'
  const value = String(found.value).toLowerCase()
  if (['strict', 'required', 'on', 'true'].includes(value)) return 'strict'
  if (['warn', 'best_effort', 'relaxed'].includes(value)) return 'warn'
  if (['off', 'skip', 'disabled', 'false'].includes(value)) return 'off'
  throw configError(PL + found.path, '"strict", "warn" or "off"')
}

function policyOf(pl: Record<string, unknown>): { config: Record<string, unknown>; name?: string } {
  const { policy_name: name, ...config } = objectAt(pl, 'policy', `${PL}policy`)
  delete config.inference_url
  delete config.api_base
  delete config.base_url
  return typeof name === 'string' && name !== '' ? { config, name } : { config }
}

/** The secrets and URL of the task app: from headers, the body, its metadata or the table. */
function taskAppAccess(
  body: Record<string, unknown>,
  pl: Record<string, unknown>,
  headers: IncomingHttpHeaders,
) {
  const url = stringAt(pl, ['container_url', 'task_app_url'], PL) ?? stringAt(body, ['task_url'])
  if (url === undefined) throw configError(`${PL}container_url`, 'the task app URL (or task_app_url)')
  const header = headers['x-synthtunnel-worker-token']
  const workerToken =
    (typeof header === 'string' && header !== '' ? header : undefined) ??
    stringAt(body, ['container_worker_token', 'metadata.worker_token', 'metadata.container_worker_token'])
  const apiKey =
    stringAt(body, ['container_api_key', 'metadata.container_api_key']) ??
    stringAt(pl, ['container_api_key', 'task_app_api_key'], PL)
  return { containerUrl: httpUrl(url, `${PL}container_url`), workerToken, apiKey }
}

function gepaSpecOf(
  body: Record<string, unknown>,
  pl: Record<string, unknown>,
  headers: IncomingHttpHeaders,
): GepaSpec {
  const access = taskAppAccess(body, pl, headers)
  const { messages, optimizedIndex } = initialMessages(pl)
  const seeds = seedsOf(pl)
  const policy = policyOf(pl)
  const envName = stringAt(pl, ['gepa.env_name', 'env_name', 'task_app_id'], PL)
  const budget = intAt(pl, ['gepa.rollout.budget'], { min: 1 }, undefined)
  return {
    containerUrl: access.containerUrl,
    ...(access.apiKey !== undefined && { containerApiKey: access.apiKey }),
    ...(access.workerToken !== undefined && { workerToken: access.workerToken }),
    initialMessages: messages,
    optimizedIndex,
    wildcards: wildcardsOf(pl, messages),
    policyConfig: policy.config,
    ...(policy.name !== undefined && { policyName: policy.name }),
    ...(envName !== undefined && { envName }),
    envConfig: objectAt(pl, 'env_config', `${PL}env_config`),
    trainSeeds: seeds.train,
    validationSeeds: seeds.validation,
    ...(budget !== undefined && { budget }),
    maxConcurrent: intAt(pl, ['gepa.rollout.max_concurrent'], { min: 1, max: 256 }, 4) as number,
    minibatchSize: intAt(pl, ['gepa.rollout.minibatch_size'], { min: 1, max: 1000 }, 3) as number,
    generations: intAt(pl, ['gepa.population.num_generations'], { min: 1, max: 1000 }, 3) as number,
    childrenPerGeneration: intAt(
      pl,
      ['gepa.population.children_per_generation'],
      { min: 1, max: 100 },
      2,
    ) as number,
    randomSeed: intAt(pl, ['gepa.random_seed'], { min: 0 }, 0) as number,
    healthCheck: healthCheckOf(pl),
  }
}

/**
 * Reads a create body of any generation. `routeAlgorithm` is set by the G2 routes
 * (`/api/jobs/gepa`, `/api/jobs/mipro`).
 *
 * @throws {@link JobsError} `TASKAPP_ERR_JOBS_INVALID_CONFIG` naming the first bad field.
 */
export function readCreateRequest(
  body: unknown,
  headers: IncomingHttpHeaders,
  routeAlgorithm?: Algorithm,
): JobRequest {
  if (!isObject(body)) throw configError('The request body', 'a JSON object')
  const pl = promptLearningOf(body)
  const algorithm = algorithmOf(body, pl, routeAlgorithm)
  const mode =
    typeof body.kind === 'string' && body.kind.includes('_')
      ? body.kind.slice(body.kind.indexOf('_') + 1)
      : 'offline'
  const metadata = body.metadata === undefined || body.metadata === null ? {} : body.metadata
  if (!isObject(metadata)) throw configError('metadata', 'an object')
  const systemName = stringAt(body, ['system.name']) ?? `sdk-${algorithm}-${mode}`
  return {
    algorithm,
    kind: `${algorithm}_${mode}`,
    autoStart: body.auto_start !== false,
    metadata,
    systemName,
    config: pl,
    ...(algorithm === 'gepa' && { gepa: gepaSpecOf(body, pl, headers) }),
  }
}
