/**
 * Secret flags of the `taskapp` CLI. A value given as a flag sits in `/proc/<pid>/cmdline`, which
 * every local user can read (`ps`), so each flag declared `secret` (see `flag-table.ts`) gets a
 * `--<name>-file <path>` companion, read here at parse time, and a warning on stderr when the
 * secret is given as the flag itself.
 */
import { closeSync, fstatSync, openSync, readFileSync, type Stats } from 'node:fs'
import type { CliEnv, Flag, FlagContext, FlagSource, GivenValue } from './flag-table'

/** Largest secret file read: a key file holds a key, not a log. */
const MAX_SECRET_FILE_BYTES = 64 * 1024

/**
 * The `secret` field of a flag from its declaration's: `true` → every value is secret, a
 * predicate → the values it accepts, `false` / absent → none (no field).
 *
 * @example
 * ```ts
 * secretOf(true).secret?.('k') // true
 * ```
 */
export function secretOf(secret: boolean | ((raw: string) => boolean) | undefined): {
  secret?: (raw: string) => boolean
} {
  if (secret === undefined || secret === false) return {}
  return { secret: secret === true ? () => true : secret }
}

/**
 * The name of a secret flag's file companion (`api-key` → `api-key-file`).
 *
 * @example
 * ```ts
 * fileFlagName(RELAY_FLAGS.apiKeys) // 'api-key-file'
 * ```
 */
export function fileFlagName(flag: Flag<unknown>): string {
  return `${flag.name}-file`
}

/**
 * The `--<name>-file <path>` row of a secret flag, for `parseArgs` and `--help`; its value is
 * read by `resolveFlags` in place of the flag's.
 *
 * @example
 * ```ts
 * fileCompanion(SERVE_FLAGS.apiKey).name // 'api-key-file'
 * ```
 */
export function fileCompanion(flag: Flag<unknown>): Flag<undefined> {
  const how = flag.multiple
    ? ', one per line (blank lines and # comments skipped)'
    : ' (one trailing newline trimmed)'
  return {
    name: fileFlagName(flag),
    type: 'string',
    multiple: false,
    value: '<path>',
    help: `read --${flag.name} from this file${how}: keeps it out of the process list`,
    env: [],
    resolve: () => ({ value: undefined, source: 'default' }),
  }
}

/**
 * The stderr line for a secret given as `flag` on the command line.
 *
 * @example
 * ```ts
 * secretFlagWarning('relay', RELAY_FLAGS.apiKeys)
 * // 'taskapp relay: warning: --api-key puts a secret in the process list ...; use --api-key-file <path> or TASKAPP_RELAY_API_KEYS instead.'
 * ```
 */
export function secretFlagWarning(command: string, flag: Flag<unknown>): string {
  // The first variable is the one to set (the others are fallbacks, listed in --help).
  const instead = [`--${fileFlagName(flag)} <path>`, ...flag.env.slice(0, 1)]
  return (
    `taskapp ${command}: warning: --${flag.name} puts a secret in the process list ` +
    `(ps, /proc/<pid>/cmdline) for every local user to read; use ${instead.join(' or ')} instead.`
  )
}

/** Why `path` could not be opened or read, in the words of the file flag. */
function unreadable(path: string, err: unknown): string {
  const code = (err as { code?: string }).code
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return `${path} does not exist; write the secret to it (chmod 600) or fix the path.`
  }
  if (code === 'EISDIR') return `${path} is a directory; give the file that holds the secret.`
  if (code === 'EACCES' || code === 'EPERM') {
    return `${path} cannot be read (permission denied); make it readable by the user running taskapp.`
  }
  return `${path} cannot be read: ${err instanceof Error ? err.message : String(err)}.`
}

/** Opens, checks and reads `path`; usage errors name the file flag (`ctx`) and the path. */
function readText(path: string, ctx: FlagContext): { text: string; stat: Stats } {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    throw ctx.fail(unreadable(path, err))
  }
  try {
    const stat = fstatSync(fd)
    if (stat.isDirectory()) throw ctx.fail(unreadable(path, { code: 'EISDIR' }))
    const tooLarge = `${path} is larger than ${MAX_SECRET_FILE_BYTES / 1024} KiB; it should hold only the secret.`
    if (stat.isFile() && stat.size > MAX_SECRET_FILE_BYTES) throw ctx.fail(tooLarge)
    let text: string
    try {
      // a pipe (`--api-key-file <(pass show relay)`) is read too
      text = readFileSync(fd, 'utf8')
    } catch (err) {
      throw ctx.fail(unreadable(path, err))
    }
    if (Buffer.byteLength(text) > MAX_SECRET_FILE_BYTES) throw ctx.fail(tooLarge)
    return { text, stat }
  } finally {
    closeSync(fd)
  }
}

/**
 * Reads the file a `--<name>-file` flag names and returns the value(s) in it, as the flag itself
 * would have given them: for a single value, the text with one trailing newline trimmed; for a
 * list, one value per line (trimmed; blank lines and `#` comments skipped). Missing, unreadable,
 * empty or (single value) multi-line files are usage errors naming the flag and the path. Warns,
 * like ssh, when a regular file is readable by group or others.
 *
 * @example
 * ```ts
 * readSecretFile('./relay-keys', { multiple: true }, flagContext('relay', '--api-key-file'), warn)
 * // ['key-one', 'key-two']
 * ```
 */
export function readSecretFile(
  path: string,
  flag: { readonly multiple: boolean },
  ctx: FlagContext,
  warn: (line: string) => void,
): string | string[] {
  const { text, stat } = readText(path, ctx)
  let value: string | string[]
  if (flag.multiple) {
    if (text.trim() === '') throw ctx.fail(`${path} is empty; write one value per line.`)
    value = text
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'))
    if (value.length === 0) {
      throw ctx.fail(`${path} holds nothing but blank lines and # comments; write one value per line.`)
    }
  } else {
    value = text.replace(/\r?\n$/, '')
    if (value.trim() === '') throw ctx.fail(`${path} is empty; write the secret to it.`)
    if (/[\r\n]/.test(value)) {
      throw ctx.fail(
        `${path} holds more than one line; put only the secret in it (one trailing newline is fine).`,
      )
    }
  }
  if (stat.isFile() && process.platform !== 'win32' && (stat.mode & 0o044) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0')
    warn(
      `taskapp ${ctx.command}: warning: ${ctx.flag} ${path} is readable by other users (mode ${mode}); run \`chmod 600 ${path}\`.`,
    )
  }
  return value
}

/** The string values `parseArgs` gave for one flag. */
function givenStrings(given: GivenValue): string[] {
  if (typeof given === 'string') return [given]
  return Array.isArray(given) ? given.filter((v): v is string => typeof v === 'string') : []
}

/**
 * Resolves a secret flag: from its `--<name>-file` when that is given (never together with the
 * flag; the file's values go through the flag's own parser), else as `flag.resolve` does, with a
 * warning when a secret value was given as the flag.
 *
 * @example
 * ```ts
 * resolveSecretFlag(flag, given, env, flagContext('relay', '--api-key'), flagContext('relay', '--api-key-file'), warn)
 * ```
 */
export function resolveSecretFlag(
  flag: Flag<unknown>,
  given: Readonly<Record<string, GivenValue>>,
  env: CliEnv,
  ctx: FlagContext,
  fileCtx: FlagContext,
  warn: (line: string) => void,
): { value: unknown; source: FlagSource } {
  const raw = given[flag.name]
  const path = given[fileFlagName(flag)]
  if (typeof path !== 'string') {
    const resolved = flag.resolve(raw, env, ctx)
    if (resolved.source === 'flag' && givenStrings(raw).some((v) => flag.secret?.(v) === true)) {
      warn(secretFlagWarning(ctx.command, flag))
    }
    return resolved
  }
  if (givenStrings(raw).length > 0) {
    throw fileCtx.fail(
      `and ${ctx.flag} are both given; give one (${fileCtx.flag} keeps the secret out of the process list).`,
    )
  }
  return { value: flag.resolve(readSecretFile(path, flag, fileCtx, warn), {}, fileCtx).value, source: 'file' }
}
