/**
 * The environment variables more than one layer reads (task server, relay agent, in-process app,
 * CLI), read here once so that every layer reads the same names the same way. The root README's
 * environment table lists every variable any package reads.
 */

/** An environment to read: `process.env` or a plain record. */
export type Env = Readonly<Record<string, string | undefined>>

/**
 * Where the task app's own key comes from, first non-blank wins: taskapp's and synth-ai's name,
 * then synth-ai's two development spellings.
 */
export const ENVIRONMENT_API_KEY_ENV_NAMES = [
  'ENVIRONMENT_API_KEY',
  'DEV_ENVIRONMENT_API_KEY',
  'dev_environment_api_key',
] as const

/** More keys the task app accepts besides its own, comma-separated. */
export const ENVIRONMENT_API_KEY_ALIASES_ENV = 'ENVIRONMENT_API_KEY_ALIASES'

/**
 * The relay API key's variables: with a relay URL (a self-hosted relay) taskapp's own name first,
 * then Synth's; for Synth's hosted relay only Synth's, so a self-hosted relay's key never goes to
 * Synth.
 */
export const RELAY_API_KEY_ENV_NAMES = {
  selfHosted: ['TASKAPP_RELAY_API_KEY', 'SYNTH_API_KEY'],
  synth: ['SYNTH_API_KEY'],
} as const

/** The relay URL's variable (a self-hosted relay); unset means Synth's hosted relay. */
export const RELAY_URL_ENV = 'TASKAPP_RELAY_URL'

/** A variable's value trimmed, or `undefined` when it is unset or blank. */
function nonBlank(env: Env, name: string): string | undefined {
  const value = env[name]?.trim()
  return value ? value : undefined
}

/**
 * The task app's own key from the environment: the first of {@link ENVIRONMENT_API_KEY_ENV_NAMES}
 * that is set (trimmed), else `undefined`.
 *
 * @example
 * ```ts
 * environmentApiKey({ DEV_ENVIRONMENT_API_KEY: 'sk-dev-1' }) // 'sk-dev-1'
 * ```
 */
export function environmentApiKey(env: Env = process.env): string | undefined {
  for (const name of ENVIRONMENT_API_KEY_ENV_NAMES) {
    const value = nonBlank(env, name)
    if (value !== undefined) return value
  }
  return undefined
}

/**
 * Every key the environment lets callers use: {@link environmentApiKey}, then the entries of
 * `ENVIRONMENT_API_KEY_ALIASES` (comma-separated), trimmed, blanks and repeats dropped. The task
 * server accepts exactly these, and the SynthTunnel agent injects exactly these.
 *
 * @example
 * ```ts
 * environmentApiKeys({ ENVIRONMENT_API_KEY: 'sk-1', ENVIRONMENT_API_KEY_ALIASES: 'sk-2, sk-1' }) // ['sk-1', 'sk-2']
 * ```
 */
export function environmentApiKeys(env: Env = process.env): string[] {
  const primary = environmentApiKey(env)
  const aliases = (env[ENVIRONMENT_API_KEY_ALIASES_ENV] ?? '').split(',').map((k) => k.trim())
  return [...new Set([...(primary === undefined ? [] : [primary]), ...aliases])].filter((k) => k !== '')
}

/**
 * The relay API key from the environment and the variable it came from. With a relay URL (a
 * self-hosted relay) `TASKAPP_RELAY_API_KEY`, then `SYNTH_API_KEY`; for Synth's hosted relay
 * (`selfHosted: false`) only `SYNTH_API_KEY`: a self-hosted relay's key is never sent to Synth.
 * The value is not trimmed (a key is used as given); a blank variable counts as unset.
 *
 * @example
 * ```ts
 * relayApiKeyFromEnv({ TASKAPP_RELAY_API_KEY: 'rk-1', SYNTH_API_KEY: 'sk-1' }, { selfHosted: true }) // { name: 'TASKAPP_RELAY_API_KEY', value: 'rk-1' }
 * relayApiKeyFromEnv({ TASKAPP_RELAY_API_KEY: 'rk-1' }, { selfHosted: false }) // undefined
 * ```
 */
export function relayApiKeyFromEnv(
  env: Env,
  options: { readonly selfHosted: boolean },
): { name: string; value: string } | undefined {
  const names = options.selfHosted ? RELAY_API_KEY_ENV_NAMES.selfHosted : RELAY_API_KEY_ENV_NAMES.synth
  for (const name of names) {
    const value = env[name]
    if (value !== undefined && value.trim() !== '') return { name, value }
  }
  return undefined
}
