/**
 * The flag-table machinery of the `taskapp` CLI. A command's flags are one table (see
 * `flags.ts`): each entry, made with {@link option}, {@link list} or {@link toggle}, declares its
 * name, alias, value placeholder, help line, default, environment fallback and parser, and its
 * key in the table says where the value goes. Parsing argv against a table, the environment
 * fallbacks and the Options section of `--help` are derived from it in `flag-parse.ts`. A flag
 * declared `secret` gets a `--<name>-file <path>` companion row (see `secret-flags.ts`).
 */
import { SdkError } from '../errors'
import { secretOf } from './secret-flags'

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
