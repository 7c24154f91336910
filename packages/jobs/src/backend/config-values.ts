/**
 * Readers for the values of a job's `prompt_learning` config: each one checks a value and throws
 * `TASKAPP_ERR_JOBS_INVALID_CONFIG` naming the config path when it is wrong.
 */
import { JobsError } from '../errors'
import { isObject } from './http'

/** A config error naming the path, e.g. `prompt_learning.gepa.rollout.budget`. */
export function configError(path: string, expected: string): JobsError {
  return new JobsError('TASKAPP_ERR_JOBS_INVALID_CONFIG', `${path} must be ${expected}.`)
}

/** The value at a dotted path of `root` (undefined when any step is missing). */
export function at(root: unknown, path: string): unknown {
  let value: unknown = root
  for (const key of path.split('.')) {
    if (!isObject(value)) return undefined
    value = value[key]
  }
  return value
}

/** The first path of `paths` that holds a value (not undefined or null). */
export function firstOf(
  root: unknown,
  paths: readonly string[],
): { path: string; value: unknown } | undefined {
  for (const path of paths) {
    const value = at(root, path)
    if (value !== undefined && value !== null) return { path, value }
  }
  return undefined
}

/** An optional object; `{}` when absent. */
export function objectAt(root: unknown, path: string, where = path): Record<string, unknown> {
  const value = at(root, path)
  if (value === undefined || value === null) return {}
  if (!isObject(value)) throw configError(where, 'a table (object)')
  return value
}

/** An optional non-empty string. */
export function stringAt(root: unknown, paths: readonly string[], prefix = ''): string | undefined {
  const found = firstOf(root, paths)
  if (found === undefined) return undefined
  if (typeof found.value !== 'string' || found.value.trim() === '') {
    throw configError(`${prefix}${found.path}`, 'a non-empty string')
  }
  return found.value.trim()
}

/** An optional integer within `[min, max]`, else `fallback`. */
export function intAt(
  root: unknown,
  paths: readonly string[],
  bounds: { min: number; max?: number },
  fallback: number | undefined,
  prefix = 'prompt_learning.',
): number | undefined {
  const found = firstOf(root, paths)
  if (found === undefined) return fallback
  const { value, path } = found
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER
  if (typeof value !== 'number' || !Number.isInteger(value) || value < bounds.min || value > max) {
    throw configError(`${prefix}${path}`, `an integer from ${bounds.min} to ${max}`)
  }
  return value
}

/**
 * A seed list: an array of integers, or `{start, end, step?}` (end exclusive, like Python's
 * `range`). At most 100,000 seeds.
 */
export function seedList(value: unknown, path: string): number[] {
  if (Array.isArray(value)) {
    if (!value.every((s) => Number.isSafeInteger(s))) throw configError(path, 'a list of integers')
    return [...new Set(value as number[])]
  }
  if (isObject(value)) {
    const { start, end, step = 1 } = value
    if (
      !Number.isSafeInteger(start) ||
      !Number.isSafeInteger(end) ||
      !Number.isSafeInteger(step) ||
      step === 0
    ) {
      throw configError(path, '{start, end, step?} with integers and a non-zero step')
    }
    const seeds: number[] = []
    const [s, e, st] = [start as number, end as number, step as number]
    for (let i = s; st > 0 ? i < e : i > e; i += st) {
      seeds.push(i)
      if (seeds.length > 100_000) throw configError(path, 'a range of at most 100000 seeds')
    }
    return seeds
  }
  throw configError(path, 'a list of integers or {start, end, step?}')
}

/** An absolute http(s) URL without a trailing slash. */
export function httpUrl(value: string, path: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw configError(path, `an absolute http(s) URL (got "${value}")`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw configError(path, `an http or https URL (got "${url.protocol}")`)
  }
  return value.replace(/\/+$/, '')
}
