/**
 * synth-ai's dot-notation merge (`synth_ai/core/utils/dict.py` `deep_update`; Rust twin
 * `core/config.rs`): each key is split on `.`; the path is walked, objects are created on the way
 * (a non-object in the way is replaced by `{}`); at the leaf an object merges into an object
 * recursively, anything else (arrays too) replaces. Keys apply in order.
 */
import { JobsError, JobsErrorCode } from '../errors'

/** A plain JSON-like object. */
export type PlainObject = Record<string, unknown>

/** Whether `value` is a plain object (not null, not an array). */
export function isPlainObject(value: unknown): value is PlainObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Key segments that would reach an object's prototype instead of a property. */
const FORBIDDEN = new Set(['__proto__', 'prototype', 'constructor'])

function checkSegment(segment: string, key: string, where: string): void {
  if (segment === '' || FORBIDDEN.has(segment)) {
    throw new JobsError(
      JobsErrorCode.InvalidConfig,
      `${where}: the key ${JSON.stringify(key)} has an empty or reserved segment ${JSON.stringify(segment)}; use dot-separated names such as "prompt_learning.gepa.rollout.budget".`,
    )
  }
}

/** A deep copy of a JSON-like value (objects and arrays copied, the rest as is). */
export function cloneValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cloneValue)
  if (isPlainObject(value)) {
    const out: PlainObject = {}
    for (const [k, v] of Object.entries(value)) out[k] = cloneValue(v)
    return out
  }
  return value
}

/**
 * Merges `overrides` into `base` in place (values are copied, never shared) and returns `base`.
 * `where` names the input in errors (`overrides`).
 *
 * @example
 * ```ts
 * deepUpdate({ a: { b: 1, c: 2 } }, { 'a.b': 3, d: [1] }) // { a: { b: 3, c: 2 }, d: [1] }
 * ```
 */
export function deepUpdate(base: PlainObject, overrides: PlainObject, where = 'overrides'): PlainObject {
  for (const [key, value] of Object.entries(overrides)) {
    const parts = key.split('.')
    let current = base
    for (const part of parts.slice(0, -1)) {
      checkSegment(part, key, where)
      const nested = current[part]
      if (isPlainObject(nested)) {
        current = nested
      } else {
        const created: PlainObject = {}
        current[part] = created
        current = created
      }
    }
    const leaf = parts[parts.length - 1] as string
    checkSegment(leaf, key, where)
    const existing = current[leaf]
    if (isPlainObject(existing) && isPlainObject(value)) deepUpdate(existing, value, where)
    else current[leaf] = cloneValue(value)
  }
  return base
}

/** Every key path of `value` (`a.b.c` for nested objects), depth first. */
export function keyPaths(value: PlainObject, prefix = ''): string[] {
  const out: string[] = []
  for (const [k, v] of Object.entries(value)) {
    const path = prefix === '' ? k : `${prefix}.${k}`
    out.push(path)
    if (isPlainObject(v)) out.push(...keyPaths(v, path))
  }
  return out
}
