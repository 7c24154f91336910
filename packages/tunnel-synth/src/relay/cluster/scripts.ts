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
  const command = `taskappRelay${name}`
  const table = client as unknown as Record<string, ScriptFn | undefined>
  if (typeof table[command] !== 'function') client.defineCommand(command, { lua, numberOfKeys: keys.length })
  return (table[command] as ScriptFn).call(client, ...keys, ...args)
}
