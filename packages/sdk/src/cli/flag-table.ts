/**
 * The flag-table machinery of the `taskapp` CLI. A command's flags are one table (see
 * `flags.ts`): each entry, made with {@link option}, {@link list} or {@link toggle}, declares its
 * name, alias, value placeholder, help line, default, environment fallback and parser, and its
 * key in the table says where the value goes. The `node:util` `parseArgs` config
 * ({@link parseArgsOptions}), the environment fallbacks ({@link resolveFlags}) and the Options
 * section of `--help` ({@link formatFlags}) are all derived from that table. A flag declared
 * `secret` gets a `--<name>-file <path>` companion row (see `secret-flags.ts`).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { SdkError } from '../errors'
import { formatFlagRows } from './help-from-table'
import { fileCompanion, fileFlagName, resolveSecretFlag, secretOf } from './secret-flags'
import { unknownOption } from './suggest'

export { flagNotes } from './help-from-table'

/** The environment variables the CLI reads (all optional). */
export interface CliEnv {
  readonly [name: string]: string | undefined
}

/**
 * The `TASKAPP_ERR_CLI_USAGE` error: `taskapp <command>: <message>` plus a pointer to `--help`.
 *
 * @example
 * ```ts
 * throw usage('serve', '--port must be an integer, got "abc".')
 * ```
 */
export function usage(command: string | undefined, message: string): SdkError {
  const where = command === undefined ? 'taskapp' : `taskapp ${command}`
  const help = command === undefined ? 'taskapp --help' : `taskapp ${command} --help`
  return new SdkError('TASKAPP_ERR_CLI_USAGE', `${where}: ${message}\nRun \`${help}\` for usage.`)
}

/** What a parser is told about the value it reads, so its messages name the flag. */
export interface FlagContext {
  /** The sub-command, for the `taskapp <command>: ...` prefix. */
  readonly command: string
  /** The flag as typed (`--port`), or a positional's placeholder (`<url>`). */
  readonly flag: string
  /** A usage error whose message starts with the flag: `fail('must be ...')` → `--port must be ...`. */
  fail(message: string): SdkError
}

/** Turns one raw string into a value, or throws `ctx.fail(...)`. */
export type FlagParser<V> = (raw: string, ctx: FlagContext) => V

/** Where a resolved value came from (`file`: a secret flag's `--<name>-file` companion). */
export type FlagSource = 'flag' | 'file' | 'env' | 'default'

/** The value `parseArgs` gives for one option (absent: `undefined`). */
export type GivenValue = string | boolean | (string | boolean)[] | undefined

/** One row of a flag table. Build it with {@link option}, {@link list} or {@link toggle}. */
export interface Flag<V> {
  /** Long name, without the dashes (`relay-url`). */
  readonly name: string
  /** One-letter alias, without the dash (`p`). */
  readonly short?: string
  /** The `parseArgs` type. */
  readonly type: 'string' | 'boolean'
  /** Repeatable (`-H a -H b`); its environment fallback is comma-separated. */
  readonly multiple: boolean
  /** Value placeholder shown in help (`<url>`); absent for booleans. */
  readonly value?: string
  /** The help line. */
  readonly help: string
  /** Environment variables read when the flag is absent, first set one wins. */
  readonly env: readonly string[]
  /** The default as shown in help; absent when there is none worth showing. */
  readonly defaultHelp?: string
  /**
   * Set for a secret flag: whether a given raw value is secret (always, or e.g. only a header
   * named like a credential). Such a flag gets a `--<name>-file` companion, and is warned about
   * on stderr when a secret value is given on the command line.
   */
  readonly secret?: (raw: string) => boolean
  /** Resolves the flag's value: the flag, else the environment, else the default. */
  readonly resolve: (given: GivenValue, env: CliEnv, ctx: FlagContext) => { value: V; source: FlagSource }
}

/** A command's flags, keyed by where each value goes (`port`, `tunnel.relayUrl`, ...). */
export type FlagTable = { readonly [target: string]: Flag<unknown> }

/** The value types of a table's targets. */
export type FlagValues<T extends FlagTable> = {
  -readonly [K in keyof T]: T[K] extends Flag<infer V> ? V : never
}

/** Where each of a table's values came from. */
export type FlagSources<T extends FlagTable> = { readonly [K in keyof T]: FlagSource }

interface Declaration {
  /** Long name, without the dashes. */
  readonly name: string
  /** One-letter alias, without the dash. */
  readonly short?: string
  /** The help line. */
  readonly help: string
}

/** What {@link option} and {@link list} take besides the {@link Declaration}. */
interface ValueDeclaration {
  /**
   * The value is a secret (a key, a token): the flag gets a `--<name>-file <path>` companion and
   * a warning on stderr when given on the command line, where `ps` shows it to every local user.
   * A predicate limits the warning to the raw values it accepts. @default false
   */
  readonly secret?: boolean | ((raw: string) => boolean)
}

/** What {@link option} takes. */
export interface OptionDeclaration<V> extends Declaration, ValueDeclaration {
  /** Value placeholder shown in help, e.g. `<url>`. */
  readonly value: string
  /** Environment variables read when the flag is absent, first non-blank one wins. */
  readonly env?: readonly string[]
  /** The value when neither the flag nor the environment gives one. */
  readonly default?: V
  /** How help shows the default. @default String(default) */
  readonly defaultHelp?: string
  /** Parses and validates the raw string (from the flag or the environment). */
  readonly parse: FlagParser<V>
}

/** What {@link list} takes. */
export interface ListDeclaration<V, R> extends Declaration, ValueDeclaration {
  /** Value placeholder shown in help, e.g. `<key>`. */
  readonly value: string
  /** Environment variables (comma-separated lists) read when the flag is absent. */
  readonly env?: readonly string[]
  /** How help shows the default (an empty list). */
  readonly defaultHelp?: string
  /** Parses and validates one item. */
  readonly parse: FlagParser<V>
  /** Combines the parsed items into the command's value. @default the array itself */
  readonly collect?: (items: V[]) => R
}

function nonBlank(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value
}

/** The first non-blank variable of `names`, with its name. */
function fromEnv(env: CliEnv, names: readonly string[]): string | undefined {
  for (const name of names) {
    const value = nonBlank(env[name])
    if (value !== undefined) return value
  }
  return undefined
}

/**
 * A flag taking one value (`--port 9000`), with optional environment fallback and default.
 * Flag values are parsed as given; blank environment values count as unset.
 *
 * @example
 * ```ts
 * option({ name: 'port', short: 'p', value: '<n>', help: 'port to bind', env: ['TASKAPP_PORT'], default: 8114, parse: port })
 * ```
 */
export function option<V>(decl: OptionDeclaration<V> & { readonly default: V }): Flag<V>
export function option<V>(decl: OptionDeclaration<V>): Flag<V | undefined>
export function option<V>(decl: OptionDeclaration<V>): Flag<V | undefined> {
  const env = decl.env ?? []
  const shown = decl.defaultHelp ?? (decl.default === undefined ? undefined : String(decl.default))
  return {
    name: decl.name,
    ...(decl.short !== undefined && { short: decl.short }),
    type: 'string',
    multiple: false,
    value: decl.value,
    help: decl.help,
    env,
    ...(shown !== undefined && { defaultHelp: shown }),
    ...secretOf(decl.secret),
    resolve: (given, vars, ctx) => {
      if (typeof given === 'string') return { value: decl.parse(given, ctx), source: 'flag' }
      const raw = fromEnv(vars, env)
      if (raw !== undefined) return { value: decl.parse(raw, ctx), source: 'env' }
      return { value: decl.default, source: 'default' }
    },
  }
}

/**
 * A repeatable flag (`-H a -H b`); its environment fallback is a comma-separated list. Absent
 * everywhere, it is an empty list.
 *
 * @example
 * ```ts
 * list({ name: 'api-key', value: '<key>', help: 'key allowed to create leases', env: ['TASKAPP_RELAY_API_KEYS'], parse: nonEmpty })
 * ```
 */
export function list<V, R>(decl: ListDeclaration<V, R> & { readonly collect: (items: V[]) => R }): Flag<R>
export function list<V>(decl: ListDeclaration<V, readonly V[]>): Flag<readonly V[]>
export function list<V, R>(decl: ListDeclaration<V, R>): Flag<R | readonly V[]> {
  const env = decl.env ?? []
  const collect = decl.collect ?? ((items: V[]): R | readonly V[] => items)
  return {
    name: decl.name,
    ...(decl.short !== undefined && { short: decl.short }),
    type: 'string',
    multiple: true,
    value: decl.value,
    help: decl.help,
    env,
    ...(decl.defaultHelp !== undefined && { defaultHelp: decl.defaultHelp }),
    ...secretOf(decl.secret),
    resolve: (given, vars, ctx) => {
      const items = Array.isArray(given) ? given.filter((v): v is string => typeof v === 'string') : []
      if (items.length > 0) return { value: collect(items.map((v) => decl.parse(v, ctx))), source: 'flag' }
      const raw = fromEnv(vars, env)
      if (raw === undefined) return { value: collect([]), source: 'default' }
      const fromList = raw
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '')
      return { value: collect(fromList.map((v) => decl.parse(v, ctx))), source: 'env' }
    },
  }
}

/**
 * A boolean flag (`--json`): true when given, else false.
 *
 * @example
 * ```ts
 * toggle({ name: 'json', help: 'print one JSON line' })
 * ```
 */
export function toggle(decl: Declaration): Flag<boolean> {
  return {
    name: decl.name,
    ...(decl.short !== undefined && { short: decl.short }),
    type: 'boolean',
    multiple: false,
    help: decl.help,
    env: [],
    resolve: (given) => ({ value: given === true, source: given === true ? 'flag' : 'default' }),
  }
}

/** `-h, --help`, which every command takes; not part of any table's values. */
export const HELP_FLAG: Flag<boolean> = toggle({ name: 'help', short: 'h', help: 'this help' })

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
