/** Lua scripts on an ioredis client: defined once per client, sent by SHA (ioredis resends on NOSCRIPT). */
import type { Redis } from 'ioredis'

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>

/**
 * Run `lua` as the client command `taskappRelay<name>` with `keys` and `args`.
 * @example
 * ```ts
 * await runScript(client, 'Find', "return redis.call('GET', KEYS[1])", ['k'], [])
 * ```
 */
export function runScript(
  client: Redis,
  name: string,
  lua: string,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  const command = defineScript(client, name, lua, keys.length)
  return (client as unknown as Record<string, ScriptFn>)[command]!.call(client, ...keys, ...args)
}

/**
 * Define `lua` on `client` (once) as `taskappRelay<name>`, for use on the client or its pipelines.
 * @example
 * ```ts
 * const command = defineScript(client, 'Beat', lua, 2) // then pipeline[command](...keys, ...args)
 * ```
 */
export function defineScript(client: Redis, name: string, lua: string, numberOfKeys: number): string {
  const command = `taskappRelay${name}`
  if (typeof (client as unknown as Record<string, unknown>)[command] !== 'function')
    client.defineCommand(command, { lua, numberOfKeys })
  return command
}
