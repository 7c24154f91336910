/**
 * The Options section of `--help`, generated from a command's flag table (see `flag-table.ts`):
 * one entry per flag, its help line wrapped to the width with a `[repeatable; default: ...; env
 * ...]` note.
 */
import type { Flag } from './flag-table'

const LEFT = 30

/** Joins words that wrapping must not split (`env TASKAPP_PORT`). */
const KEEP = '\u00a0'

/** Splits `text` into lines of at most `width` characters, at spaces (not at {@link KEEP}). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/ +/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  if (line !== '') lines.push(line)
  return lines.map((l) => l.replaceAll(KEEP, ' '))
}

/** The `[repeatable; default: ...; env A, then B]` note of a flag's help line. */
export function flagNotes(flag: Flag<unknown>): string {
  const notes: string[] = []
  if (flag.multiple) notes.push('repeatable')
  if (flag.defaultHelp !== undefined) notes.push(`default: ${flag.defaultHelp}`)
  if (flag.env.length > 0)
    notes.push(`env ${flag.env.join(', then ')}${flag.multiple ? ', comma-separated' : ''}`)
  return notes.length === 0 ? '' : `[${notes.join('; ')}]`
}

/** `words` with its spaces turned into {@link KEEP}, so wrapping keeps them on one line. */
function unsplit(words: string): string {
  return words.replaceAll(' ', KEEP)
}

/** The help lines of one flag: `-p, --port <n>`, then its help text and note, wrapped. */
function formatFlag(flag: Flag<unknown>, width: number): string[] {
  const alias = flag.short === undefined ? '    ' : `-${flag.short}, `
  const left = `  ${alias}--${flag.name}${flag.value === undefined ? '' : ` ${flag.value}`}`
  // The note goes on the help line when both fit, else on lines of its own.
  const notes = flagNotes(flag).replace(/env [^\];]+|default: [^\];]+/g, unsplit)
  const oneLine = notes === '' ? flag.help : `${flag.help} ${notes}`
  const text =
    oneLine.length <= width - LEFT
      ? [oneLine]
      : [...wrap(flag.help, width - LEFT), ...wrap(notes, width - LEFT)]
  const indent = ' '.repeat(LEFT)
  if (left.length + 2 > LEFT) return [left, ...text.map((l) => `${indent}${l}`)]
  return [`${left.padEnd(LEFT)}${text[0] ?? ''}`, ...text.slice(1).map((l) => `${indent}${l}`)]
}

/**
 * The Options section for `flags`, in order, wrapped to `width` columns.
 *
 * @example
 * ```ts
 * formatFlagRows([...Object.values(SERVE_FLAGS), HELP_FLAG], 92)
 * ```
 */
export function formatFlagRows(flags: readonly Flag<unknown>[], width: number): string {
  return flags.flatMap((flag) => formatFlag(flag, width)).join('\n')
}
