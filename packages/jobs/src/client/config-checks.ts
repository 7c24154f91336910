/**
 * The checks synth-ai's G3 builder makes on `[prompt_learning]` (steps 2 and 3 of
 * `sdk/optimization/internal/builders.py`): seeds per algorithm and the rollout health-check mode.
 */
import type { JobAlgorithm } from '../wire'
import { isPlainObject, type PlainObject } from './merge'

/** A seed list: integers, or `{ start, end, step? }` (a range). */
function seedListProblem(value: unknown): string | undefined {
  if (Array.isArray(value)) {
    if (value.length === 0) return 'is empty'
    return value.every((s) => Number.isInteger(s)) ? undefined : 'must hold integers only'
  }
  if (isPlainObject(value)) {
    const { start, end, step } = value
    if (!Number.isInteger(start) || !Number.isInteger(end)) return 'as a range needs integer start and end'
    if (step !== undefined && (!Number.isInteger(step) || (step as number) <= 0)) {
      return 'as a range needs a positive integer step'
    }
    return undefined
  }
  return 'must be a list of integers or { start, end, step }'
}

/** The first present value of `candidates` (`[field, value]`), or undefined. */
function firstPresent(
  candidates: ReadonlyArray<readonly [string, unknown]>,
): readonly [string, unknown] | undefined {
  return candidates.find(([, v]) => v !== undefined && v !== null)
}

function checkSeedField(
  found: readonly [string, unknown] | undefined,
  missing: string,
  issues: string[],
): void {
  if (found === undefined) {
    issues.push(missing)
    return
  }
  const problem = seedListProblem(found[1])
  if (problem !== undefined) issues.push(`${found[0]} ${problem}`)
}

function checkGepaSeeds(pl: PlainObject, issues: string[]): void {
  const gepa = pl.gepa
  if (!isPlainObject(gepa)) {
    issues.push('prompt_learning.gepa is required for algorithm "gepa" (a [prompt_learning.gepa] table)')
    return
  }
  const evaluation = isPlainObject(gepa.evaluation) ? gepa.evaluation : {}
  const taskData = isPlainObject(pl.task_data) ? pl.task_data : {}
  const trainPools = isPlainObject(taskData.train_pools) ? taskData.train_pools : {}
  const validationPools = isPlainObject(taskData.validation_pools) ? taskData.validation_pools : {}
  const pools = [trainPools.reflection_seeds, trainPools.pareto_seeds].filter(Array.isArray).flat()
  checkSeedField(
    firstPresent([
      ['prompt_learning.gepa.evaluation.train_seeds', evaluation.train_seeds],
      ['prompt_learning.gepa.evaluation.seeds', evaluation.seeds],
      ['prompt_learning.task_data.train_pools', pools.length > 0 ? pools : undefined],
    ]),
    'prompt_learning.gepa.evaluation.seeds (or train_seeds, or task_data.train_pools) is required for GEPA',
    issues,
  )
  checkSeedField(
    firstPresent([
      ['prompt_learning.gepa.evaluation.val_seeds', evaluation.val_seeds],
      ['prompt_learning.gepa.evaluation.validation_seeds', evaluation.validation_seeds],
      ['prompt_learning.task_data.validation_pools.main_seeds', validationPools.main_seeds],
      ['prompt_learning.task_data.validation_seeds', taskData.validation_seeds],
    ]),
    'prompt_learning.gepa.evaluation.validation_seeds (or val_seeds, or task_data.validation_seeds) is required for GEPA',
    issues,
  )
}

function checkMiproSeeds(pl: PlainObject, issues: string[]): void {
  const mipro = pl.mipro
  if (!isPlainObject(mipro)) {
    issues.push('prompt_learning.mipro is required for algorithm "mipro" (a [prompt_learning.mipro] table)')
    return
  }
  for (const key of ['bootstrap_train_seeds', 'online_pool'] as const) {
    checkSeedField(
      firstPresent([
        [`prompt_learning.mipro.${key}`, mipro[key]],
        [`prompt_learning.${key}`, pl[key]],
      ]),
      `prompt_learning.mipro.${key} is required for MIPRO`,
      issues,
    )
  }
}

/** Pushes a problem per missing or malformed seed list of `algorithm` (builder step 3). */
export function checkSeeds(pl: PlainObject, algorithm: JobAlgorithm, issues: string[]): void {
  if (algorithm === 'gepa') checkGepaSeeds(pl, issues)
  else checkMiproSeeds(pl, issues)
}

const HEALTH_MODES: Readonly<Record<string, 'strict' | 'warn' | 'off'>> = {
  strict: 'strict',
  required: 'strict',
  on: 'strict',
  true: 'strict',
  warn: 'warn',
  best_effort: 'warn',
  relaxed: 'warn',
  off: 'off',
  skip: 'off',
  disabled: 'off',
  false: 'off',
}

const HEALTH_KEYS = ['rollout_health_check_mode', 'backend_rollout_health_check_mode'] as const

/**
 * Normalises every `prompt_learning[.gepa|.mipro].(backend_)rollout_health_check_mode` to
 * `strict|warn|off`; when none is set, sets `prompt_learning.rollout_health_check_mode = "warn"`
 * (this client never runs synth-ai's own pre-submit check, so the backend's preflight only warns,
 * as in synth-ai's `run_in_process_job`).
 */
export function normalizeHealthChecks(pl: PlainObject, issues: string[]): void {
  let found = false
  const tables: ReadonlyArray<readonly [string, unknown]> = [
    ['prompt_learning', pl],
    ['prompt_learning.gepa', pl.gepa],
    ['prompt_learning.mipro', pl.mipro],
  ]
  for (const [prefix, table] of tables) {
    if (!isPlainObject(table)) continue
    for (const key of HEALTH_KEYS) {
      const value = table[key]
      if (value === undefined || value === null) continue
      found = true
      const mode =
        typeof value === 'string' || typeof value === 'boolean'
          ? HEALTH_MODES[String(value).trim().toLowerCase()]
          : undefined
      if (mode === undefined) {
        issues.push(`${prefix}.${key} must be strict, warn or off; got ${JSON.stringify(value)}`)
      } else {
        table[key] = mode
      }
    }
  }
  if (!found) pl.rollout_health_check_mode = 'warn'
}
