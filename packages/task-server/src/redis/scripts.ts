/**
 * The Lua scripts of the Redis job store: each state change is one script, so the cluster-wide
 * cap, eviction and "a final record is kept" hold however many task apps write at once.
 *
 * Keys, all under the store's prefix `p` (one Redis server; not Redis Cluster, since the
 * scripts reach keys they compute):
 * - `p..'job:'..id`: a hash `{ status, owner, job, cancel? }` (`job` is the record's JSON as last
 *   put, `cancel` the `{ finishedAt, error }` a `requestCancel` laid over it), expiring at its deadline;
 * - `p..'jobs'`: every job id, scored by its deadline (`ttlMs` after it ended, `maxRunningMs`
 *   after its last update while not final); its size is the count the cap applies to;
 * - `p..'done'` and `p..'done:'..owner`: finished job ids in the order they ended (the counter
 *   `p..'seq'`), for eviction;
 * - channel `p..'cancel'`: the ids of jobs cancelled through `requestCancel`.
 * Times come from the Redis server (TIME), so replicas with skewed clocks agree.
 */
import { createHash } from 'node:crypto'

const PRELUDE = `
local p = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local FINAL = { succeeded = true, failed = true, cancelled = true }

-- Drops the index entries of jobs past their deadline (their hash expires on its own).
local gone = redis.call('ZRANGEBYSCORE', p .. 'jobs', '-inf', now)
for _, id in ipairs(gone) do
  redis.call('ZREM', p .. 'jobs', id)
  redis.call('ZREM', p .. 'done', id)
  redis.call('DEL', p .. 'job:' .. id)
end

-- The oldest id of a 'done' set that is still held (stale entries are dropped on the way).
local function first_live(zkey)
  while true do
    local c = redis.call('ZRANGE', zkey, 0, 0)[1]
    if not c then return nil end
    if redis.call('ZSCORE', p .. 'jobs', c) then return c end
    redis.call('ZREM', zkey, c)
  end
end

-- Evicts the oldest finished job of owner, else the oldest finished job of anyone.
local function evict(owner)
  local victim = nil
  if owner ~= '' then victim = first_live(p .. 'done:' .. owner) end
  if not victim then victim = first_live(p .. 'done') end
  if not victim then return false end
  local vowner = redis.call('HGET', p .. 'job:' .. victim, 'owner')
  redis.call('DEL', p .. 'job:' .. victim)
  redis.call('ZREM', p .. 'jobs', victim)
  redis.call('ZREM', p .. 'done', victim)
  if vowner and vowner ~= '' then redis.call('ZREM', p .. 'done:' .. vowner, victim) end
  return true
end

local function write(id, status, owner, json, ttl, max_running)
  local key = p .. 'job:' .. id
  local final = FINAL[status]
  local deadline = now + (final and ttl or max_running)
  redis.call('HSET', key, 'status', status, 'owner', owner, 'job', json)
  redis.call('PEXPIREAT', key, deadline)
  redis.call('ZADD', p .. 'jobs', deadline, id)
  if final then
    -- Ordered by a counter, not the clock: two jobs ending in the same millisecond keep their order.
    local seq = redis.call('INCR', p .. 'seq')
    redis.call('ZADD', p .. 'done', seq, id)
    if owner ~= '' then
      redis.call('ZADD', p .. 'done:' .. owner, seq, id)
      redis.call('PEXPIRE', p .. 'done:' .. owner, ttl + 1000)
    end
  end
end
`

/**
 * put(job). ARGV: prefix, id, status, owner, json, maxJobs, ttlMs, maxRunningMs.
 * Returns 1 (stored), 0 (kept: the stored record is final), -1 (full of unfinished jobs).
 */
const PUT = `${PRELUDE}
local id, status, owner, json = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max_jobs, ttl, max_running = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local cur = redis.call('HGET', p .. 'job:' .. id, 'status')
if cur and FINAL[cur] then return 0 end
if not cur and redis.call('ZCARD', p .. 'jobs') >= max_jobs and not evict(owner) then return -1 end
write(id, status, owner, json, ttl, max_running)
return 1
`

/**
 * requestCancel(id). ARGV: prefix, id, cancellation json (`{ finishedAt, error }`), ttlMs, maxRunningMs.
 * Status check and change in one step: the record's `job` JSON is left as it is, the status turns
 * `cancelled` and the cancellation goes in the `cancel` field (a read lays it over `job`).
 * Returns {0} unknown, {1, json, cancel or ''} already final (nothing changed), {2, json, cancel} cancelled now.
 */
const CANCEL = `${PRELUDE}
local id, cancel = ARGV[2], ARGV[3]
local ttl, max_running = tonumber(ARGV[4]), tonumber(ARGV[5])
local key = p .. 'job:' .. id
local cur = redis.call('HMGET', key, 'status', 'owner', 'job', 'cancel')
if not cur[1] or not cur[3] then return {0} end
if FINAL[cur[1]] then return {1, cur[3], cur[4] or ''} end
write(id, 'cancelled', cur[2] or '', cur[3], ttl, max_running)
redis.call('HSET', key, 'cancel', cancel)
redis.call('PUBLISH', p .. 'cancel', id)
return {2, cur[3], cancel}
`

/** A script with its SHA-1, for EVALSHA with a fallback to EVAL after Redis lost its script cache. */
export interface LuaScript {
  readonly source: string
  readonly sha: string
}

function script(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/** The store's scripts. */
export const SCRIPTS = { put: script(PUT), cancel: script(CANCEL) } as const
