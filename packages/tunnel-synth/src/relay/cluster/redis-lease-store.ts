/** A {@link LeaseStore} in Redis, shared by every relay node of a cluster. */
import { SynthTunnelError, SynthTunnelErrorCode } from '../../errors'
import type { Redis } from 'ioredis'
import type { LeaseStore, RelayLease } from '../lease-store'
import { connectRedis, redisError } from './redis-client'
import type { RedisInput } from './redis-client'
import { runScript } from './scripts'

/** Options of {@link createRedisLeaseStore}. */
export interface RedisLeaseStoreOptions {
  /** A Redis URL (`redis://`, `rediss://`, `unix:///path`) or a connected ioredis client (not closed by the store). */
  redis: RedisInput
  /** Prefix of every key, so several relays (or tests) share one Redis. @default 'taskapp:relay:' */
  prefix?: string
}

/** A Redis lease store; `close()` ends its connection when it made one. */
export interface RedisLeaseStore extends LeaseStore, AsyncDisposable {
  close(): Promise<void>
}

/** How long a lease's keys outlive its `expiresAt`, so `deleteExpired` can still hand it back. */
const EXPIRED_GRACE_MS = 60_000
/** Most leases one `deleteExpired` call removes (the next call takes the rest). */
const EXPIRE_BATCH = 500

// KEYS: lease, route, agent, exp, owner. ARGV: json, ttlMs, expiresAt, leaseId, trimBefore
const PUT = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[2])
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[5])
return 1`
// KEYS: route or agent index. ARGV: prefix
const FIND = `
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('GET', ARGV[1] .. 'lease:' .. id)`
// ARGV: prefix, leaseId. Deletes one lease and its indexes; returns its JSON or false.
const REMOVE_FN = `
local function remove(p, id)
  local json = redis.call('GET', p .. 'lease:' .. id)
  redis.call('ZREM', p .. 'exp', id)
  if not json then return false end
  local l = cjson.decode(json)
  redis.call('DEL', p .. 'lease:' .. id)
  if redis.call('GET', p .. 'route:' .. l.routeToken) == id then redis.call('DEL', p .. 'route:' .. l.routeToken) end
  if redis.call('GET', p .. 'agent:' .. l.agentTokenHash) == id then redis.call('DEL', p .. 'agent:' .. l.agentTokenHash) end
  redis.call('ZREM', p .. 'owner:' .. l.ownerKeyHash, id)
  return json
end`
const DELETE = `${REMOVE_FN}
if remove(ARGV[1], ARGV[2]) then return 1 end
return 0`
// ARGV: prefix, now, batch
const DELETE_EXPIRED = `${REMOVE_FN}
local ids = redis.call('ZRANGEBYSCORE', ARGV[1] .. 'exp', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local json = remove(ARGV[1], id)
  if json then out[#out + 1] = json end
end
return out`

function toLease(json: string): RelayLease {
  const l = JSON.parse(json) as RelayLease
  return { ...l, localTarget: l.localTarget ?? undefined }
}

/** Most leases {@link RedisLeaseStore.list} returns (the status page shows at most 500 rows). */
const LIST_LIMIT = 500

/**
 * A {@link LeaseStore} in Redis: one JSON value per lease (secrets only as their SHA-256, as in
 * every store), indexes by route token and agent-token hash, all with a key TTL a minute past the
 * lease's expiry; a sorted set by expiry for `deleteExpired` and `size`, and one per owner key for
 * cluster-wide `count`. It connects on first use; while Redis is unreachable every call rejects
 * with `TASKAPP_ERR_SYNTH_RELAY_REDIS` (the relay answers 503).
 *
 * @example
 * ```ts
 * import { createRedisLeaseStore, createRelayServer } from '@taskapp/tunnel-synth/relay'
 *
 * await using leaseStore = createRedisLeaseStore({ redis: process.env.REDIS_URL! })
 * await using relay = await createRelayServer({ apiKeys: ['k'], leaseStore })
 * ```
 */
export function createRedisLeaseStore(options: RedisLeaseStoreOptions): RedisLeaseStore {
  const p = options.prefix ?? 'taskapp:relay:'
  let connecting: Promise<{ client: Redis; owned: boolean }> | undefined
  let closed = false
  const client = async (): Promise<Redis> => {
    // after close() nothing may open a connection nobody would close
    if (closed) {
      throw new SynthTunnelError(
        SynthTunnelErrorCode.RelayRedis,
        'The Redis lease store was closed: create a new one (createRedisLeaseStore) to use it again.',
      )
    }
    connecting ??= connectRedis(options.redis)
    try {
      return (await connecting).client
    } catch (err) {
      connecting = undefined // try again on the next call
      throw err
    }
  }
  const call = async <T>(what: string, fn: (c: Redis) => Promise<T>): Promise<T> => {
    try {
      return await fn(await client())
    } catch (err) {
      throw redisError(what, err)
    }
  }
  const close = async () => {
    if (closed) return
    closed = true
    const c = await connecting?.catch(() => undefined)
    if (c?.owned) c.client.disconnect()
  }
  return {
    put: (lease) =>
      call('store a lease', async (c) => {
        const now = Date.now()
        const ttl = Math.max(1_000, Math.ceil(lease.expiresAt - now + EXPIRED_GRACE_MS))
        const keys = [
          `${p}lease:${lease.leaseId}`,
          `${p}route:${lease.routeToken}`,
          `${p}agent:${lease.agentTokenHash}`,
          `${p}exp`,
          `${p}owner:${lease.ownerKeyHash}`,
        ]
        const args = [JSON.stringify(lease), ttl, lease.expiresAt, lease.leaseId, now - EXPIRED_GRACE_MS]
        await runScript(c, 'Put', PUT, keys, args)
      }),
    get: (id) =>
      call('read a lease', async (c) => {
        const json = await c.get(`${p}lease:${id}`)
        return json === null ? undefined : toLease(json)
      }),
    findByRouteToken: (rt) =>
      call('find a lease', async (c) => {
        const json = await runScript(c, 'Find', FIND, [`${p}route:${rt}`], [p])
        return typeof json === 'string' ? toLease(json) : undefined
      }),
    findByAgentTokenHash: (h) =>
      call('find a lease', async (c) => {
        const json = await runScript(c, 'Find', FIND, [`${p}agent:${h}`], [p])
        return typeof json === 'string' ? toLease(json) : undefined
      }),
    delete: (id) =>
      call('delete a lease', async (c) => (await runScript(c, 'Delete', DELETE, [], [p, id])) === 1),
    deleteExpired: (now) =>
      call('remove expired leases', async (c) => {
        const out = await runScript(c, 'DeleteExpired', DELETE_EXPIRED, [], [p, now, EXPIRE_BATCH])
        return (out as string[]).map(toLease)
      }),
    size: () => call('count leases', (c) => c.zcard(`${p}exp`)),
    list: (now) =>
      call('list leases', async (c) => {
        // the status page's rows: at most LIST_LIMIT alive leases, those expiring last first
        const ids = await c.zrevrangebyscore(`${p}exp`, '+inf', `(${now}`, 'LIMIT', 0, LIST_LIMIT)
        if (ids.length === 0) return []
        const found = await c.mget(ids.map((id) => `${p}lease:${id}`))
        return found.filter((json): json is string => json !== null).map(toLease)
      }),
    count: (now, owner) =>
      call('count leases', (c) => c.zcount(owner ? `${p}owner:${owner}` : `${p}exp`, `(${now}`, '+inf')),
    close,
    [Symbol.asyncDispose]: close,
  }
}
