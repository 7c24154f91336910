/** The relay's Redis connection: ioredis loaded on first use, settings that fail fast while Redis is down. */
import type { Redis } from 'ioredis'
import type * as Ioredis from 'ioredis'

type IoredisModule = typeof Ioredis
import { SynthTunnelError, SynthTunnelErrorCode } from '../../errors'

/** A Redis URL (`redis://`, `rediss://`, `unix:///path/redis.sock`) or a connected ioredis client. */
export type RedisInput = string | Redis

/** A client and whether the relay owns it (closes it on shutdown). */
export interface RelayRedis {
  readonly client: Redis
  readonly owned: boolean
}

/** Deadline of one Redis command: past it the command fails (and the caller answers 503). */
export const REDIS_COMMAND_TIMEOUT_MS = 2_000

/**
 * Wrap what a Redis command threw as `TASKAPP_ERR_SYNTH_RELAY_REDIS` (the relay answers 503).
 * @example
 * ```ts
 * await client.get(key).catch((err: unknown) => { throw redisError('get a lease', err) })
 * ```
 */
export function redisError(what: string, cause: unknown): SynthTunnelError {
  if (cause instanceof SynthTunnelError) return cause
  const reason = cause instanceof Error ? cause.message : String(cause)
  return new SynthTunnelError(
    SynthTunnelErrorCode.RelayRedis,
    `The relay could not ${what} in Redis (${reason}). Check that Redis runs and is reachable from this node.`,
    { cause },
  )
}

async function loadIoredis(): Promise<IoredisModule> {
  try {
    return await import('ioredis')
  } catch (err) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.RedisClientMissing,
      'The relay needs the ioredis package for a Redis lease store or cluster mode: install it (pnpm add ioredis).',
      { cause: err },
    )
  }
}

/**
 * Connect to `redis` (a URL) with settings that fail fast while Redis is away (no offline queue,
 * one retry, a 2 s command deadline, reconnect every ≤ 500 ms), or adopt a client the caller made.
 * @example
 * ```ts
 * const { client } = await connectRedis('redis://127.0.0.1:6379')
 * ```
 */
export async function connectRedis(redis: RedisInput): Promise<RelayRedis> {
  if (typeof redis !== 'string') return { client: redis, owned: false }
  if (!/^(rediss?|unix):\/\//.test(redis)) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.RelayInvalidOptions,
      `The Redis URL must start with redis://, rediss:// or unix://, got "${redis.replace(/\/\/[^@/]*@/, '//***@')}".`,
    )
  }
  const { Redis: RedisClient } = await loadIoredis()
  const options = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: 5_000,
    retryStrategy: (times: number) => Math.min(50 * times, 500),
  }
  const client = redis.startsWith('unix://')
    ? new RedisClient({ ...options, path: redis.slice('unix://'.length) })
    : new RedisClient(redis, options)
  client.on('error', () => {}) // reported through the commands that fail
  try {
    await client.connect()
  } catch (err) {
    client.disconnect()
    throw redisError('connect', err)
  }
  return { client, owned: true }
}
