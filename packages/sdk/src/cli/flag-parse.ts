/**
 * What the CLI derives from a flag table (`flag-table.ts`): the rows `parseArgs` and `--help`
 * see, the `node:util` `parseArgs` config ({@link parseArgsOptions}), parsing argv
 * ({@link parseFlags}), the environment and file fallbacks ({@link resolveFlags}), and the
 * Options section of `--help` ({@link formatFlags}).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { formatFlagRows } from './help-from-table'
import { fileCompanion, fileFlagName, resolveSecretFlag } from './secret-flags'
import { unknownOption } from './suggest'
import {
  HELP_FLAG,
  usage,
  type CliEnv,
  type Flag,
  type FlagContext,
  type FlagSource,
  type FlagTable,
  type FlagValues,
  type FlagSources,
  type GivenValue,
} from './flag-table'

/**
 * The rows of a table as `parseArgs` and `--help` see them: each flag, followed by its
 * `--<name>-file` companion when it is secret, then `--help`.
 *
 * @example
 * ```ts
 * flagRows(RELAY_FLAGS).map((f) => f.name) // [..., 'api-key', 'api-key-file', ..., 'help']
 * ```
 */
export function flagRows(table: FlagTable): Flag<unknown>[] {
  const flags = Object.values(table).flatMap((flag) =>
    flag.secret === undefined ? [flag] : [flag, fileCompanion(flag)],
  )
  return [...flags, HELP_FLAG]
}

/**
 * The `node:util` `parseArgs` options of a table (plus `--help`).
 *
 * @example
 * ```ts
 * parseArgs({ args, options: parseArgsOptions(SERVE_FLAGS), allowPositionals: true })
 * ```
 */
export function parseArgsOptions(table: FlagTable): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = {}
  for (const flag of flagRows(table)) {
    options[flag.name] = {
      type: flag.type,
      ...(flag.short !== undefined && { short: flag.short }),
      ...(flag.multiple && { multiple: true }),
    }
  }
  return options
}

/** What {@link parseFlags} returns: the raw `parseArgs` result. */
export interface ParsedFlags {
  /** `-h` / `--help` was given. */
  readonly help: boolean
  readonly positionals: readonly string[]
  /** Raw values by flag name. */
  readonly given: Readonly<Record<string, GivenValue>>
}

/**
 * Runs `parseArgs` with a table's options; its errors become usage errors.
 *
 * @example
 * ```ts
 * const { help, positionals, given } = parseFlags('serve', SERVE_FLAGS, ['app.ts', '-p', '9000'])
 * ```
 */
export function parseFlags(command: string, table: FlagTable, args: readonly string[]): ParsedFlags {
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: parseArgsOptions(table),
      strict: true,
      allowPositionals: true,
    })
    return { help: values.help === true, positionals, given: values }
  } catch (cause) {
    const raw = cause instanceof Error ? cause.message : String(cause)
    const unknown = /^Unknown option '(-[^']*)'/.exec(raw)?.[1]
    const names = flagRows(table).map((flag) => flag.name)
    if (unknown !== undefined) throw usage(command, unknownOption(unknown, names))
    // Node's other parseArgs messages: keep the first sentence ("Option '--port <value>'
    // argument missing"), drop its advice about '--' positionals.
    const message = raw.split('\n')[0]?.replace(/\. To specify a positional argument.*$/, '') ?? raw
    throw usage(command, `${message}.`)
  }
}

/**
 * A {@link FlagContext} for `flag` of `command`.
 *
 * @example
 * ```ts
 * httpUrl(raw, flagContext('check', '<url>'))
 * ```
 */
export function flagContext(command: string, flag: string): FlagContext {
  return { command, flag, fail: (message) => usage(command, `${flag} ${message}`) }
}

/** What {@link resolveFlags} (and `parseCommand`) may be given besides the flags. */
export interface FlagHooks {
  /**
   * Gets each warning line (a secret given as a flag, a secret file others can read), without a
   * newline; the CLI writes them to stderr. @default dropped
   */
  readonly warn?: (line: string) => void
}

/**
 * Resolves every flag of a table, in table order: the flag (or, for a secret one, its
 * `--<name>-file`), else its environment variables, else its default; each value is parsed by
 * the entry's parser. Secrets given as flags are reported through `hooks.warn`.
 *
 * @example
 * ```ts
 * const { values, sources } = resolveFlags('serve', SERVE_FLAGS, parsed.given, process.env, { warn })
 * ```
 */
export function resolveFlags<T extends FlagTable>(
  command: string,
  table: T,
  given: Readonly<Record<string, GivenValue>>,
  env: CliEnv,
  hooks: FlagHooks = {},
): { values: FlagValues<T>; sources: FlagSources<T> } {
  const warn = hooks.warn ?? ((): void => undefined)
  const values: Record<string, unknown> = {}
  const sources: Record<string, FlagSource> = {}
  for (const [target, flag] of Object.entries(table)) {
    const ctx = flagContext(command, `--${flag.name}`)
    const { value, source } =
      flag.secret === undefined
        ? flag.resolve(given[flag.name], env, ctx)
        : resolveSecretFlag(flag, given, env, ctx, flagContext(command, `--${fileFlagName(flag)}`), warn)
    values[target] = value
    sources[target] = source
  }
  return { values: values as FlagValues<T>, sources: sources as FlagSources<T> }
}

/** The keys of `T` without a dot: the command's own fields, not a nested spec's. */
export type TopLevel<T> = { [K in keyof T as K extends `${string}.${string}` ? never : K]: T[K] }

/**
 * The values of `prefix.*` targets under their short key (`tunnel.relayUrl` → `relayUrl`), or,
 * without a prefix, the top-level ones; unset (`undefined`) values are left out.
 *
 * @example
 * ```ts
 * pick({ port: 1, 'tunnel.url': 'https://x' }, 'tunnel') // { url: 'https://x' }
 * ```
 */
export function pick<T extends Record<string, unknown>>(values: T): TopLevel<T>
export function pick(values: Record<string, unknown>, prefix: string): Record<string, unknown>
export function pick(values: Record<string, unknown>, prefix?: string): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined) continue
    const dot = key.indexOf('.')
    if (prefix === undefined && dot < 0) out[key] = value
    else if (prefix !== undefined && key.slice(0, dot) === prefix) out[key.slice(dot + 1)] = value
  }
  return out
}

/**
 * The Options section of a command's help: one entry per flag of the table, then `--help`.
 *
 * @example
 * ```ts
 * `Options:\n${formatFlags(SERVE_FLAGS)}`
 * ```
 */
export function formatFlags(table: FlagTable, width = 92): string {
  return formatFlagRows(flagRows(table), width)
}
