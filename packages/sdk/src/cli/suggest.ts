/**
 * "Did you mean ...?" for the CLI: the closest known name to a mistyped flag or command, by edit
 * distance (Levenshtein: insertions, deletions, substitutions), within 2 edits.
 */

/** Edits allowed between what was typed and a suggestion. */
const MAX_DISTANCE = 2

/**
 * The Levenshtein distance between two strings.
 *
 * @example
 * ```ts
 * editDistance('tunel', 'tunnel') // 1
 * ```
 */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution)
    }
    previous = current
  }
  return previous[b.length] ?? 0
}

/**
 * The known name closest to `typed` (at most 2 edits away; the first one on a tie), or
 * `undefined` when none is that close.
 *
 * @example
 * ```ts
 * closest('tunel', ['port', 'tunnel', 'json']) // 'tunnel'
 * closest('frobnicate', ['port', 'tunnel']) // undefined
 * ```
 */
export function closest(typed: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = MAX_DISTANCE + 1
  for (const name of known) {
    const distance = editDistance(typed, name)
    if (distance < bestDistance) {
      best = name
      bestDistance = distance
    }
  }
  return best
}

/**
 * The message for an unknown flag: `unknown option --tunel; did you mean --tunnel?` when one of
 * `names` (long flag names, without dashes) is close enough, else `unknown option --tunel.`
 *
 * @example
 * ```ts
 * unknownOption('--tunel', ['port', 'tunnel']) // 'unknown option --tunel; did you mean --tunnel?'
 * ```
 */
export function unknownOption(typed: string, names: readonly string[]): string {
  const match = typed.startsWith('--') ? closest(typed.slice(2).split('=')[0] ?? '', names) : undefined
  return match === undefined
    ? `unknown option ${typed}.`
    : `unknown option ${typed}; did you mean --${match}?`
}
