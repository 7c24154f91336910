/**
 * `createRedisJobStore`: the {@link JobStore} for several task-app replicas behind one load
 * balancer. Job records, results and cancellation live in Redis, so any replica answers
 * `GET /rollouts/:id` and `DELETE /rollouts/:id` for a job another replica runs.
 */
import { TaskServerError } from './errors'
import { jobStoreFull, resolveStoreLimits, type JobStore, type RolloutJob } from './job-store'
import { safeLog, silentLogger, type TaskAppLogger } from './logger'
import { loadIoredis, type CommandClient, type SubscriberClient } from './redis/load'
import { parseJobRecord } from './redis/record'
import { SCRIPTS, type LuaScript } from './redis/scripts'

/**
 * An ioredis client (`new Redis(...)` of ioredis 5) made by the caller. Typed loosely so that this
 * package's declarations need no ioredis types.
 */
export interface RedisClientLike {
  duplicate(...args: never[]): unknown
}

/** Options of {@link createRedisJobStore}. */
export interface RedisJobStoreOptions {
  /**
   * Where Redis is: a URL (`redis://host:6379`, `rediss://…`, `unix:///path/redis.sock`; the store
   * then loads ioredis, makes its own connections and closes them), or an ioredis client you made
   * (the store uses it as it is, adds one connection of its own for pub/sub, and leaves yours open).
   */
  redis: string | RedisClientLike
  /**
   * Prefix of every key and of the pub/sub channel. Task apps that must see each other's jobs use
   * the same prefix; give unrelated apps on one Redis different ones.
   * @default 'taskapp:jobs:'
   */
  prefix?: string
  /** Most jobs held at once, counted over every task app sharing the prefix (as the memory store). @default 1000 */
  maxJobs?: number
  /** How long a finished job stays readable, in milliseconds. @default 600000 (10 minutes) */
  ttlMs?: number
  /**
   * How long a job may stay pending or running since its last update before it is dropped: the
   * task app running it died. Set it above your longest rollout. @default 86400000 (24 hours)
   */
  maxRunningMs?: number
  /**
   * Besides pub/sub (and a check of every watched job each time the subscriber reconnects), how
   * often the cancel state of the jobs this process runs is read from Redis; 0 turns it off.
   * @default 5000
   */
  cancelCheckIntervalMs?: number
  /** Where connection errors and corrupt records are reported. @default silent */
  logger?: TaskAppLogger
}

/** The Redis {@link JobStore}; `close()` (also `await using`) ends the connections it made. */
export interface RedisJobStore extends JobStore, AsyncDisposable {
  /** The key prefix in use. */
  readonly prefix: string
  put(job: RolloutJob): Promise<void>
  get(id: string): Promise<RolloutJob | undefined>
  requestCancel(
    id: string,
    cancelled: (current: RolloutJob) => RolloutJob,
  ): Promise<{ readonly job: RolloutJob; readonly changed: boolean } | undefined>
  onCancel(id: string, listener: () => void): () => void
  close(): Promise<void>
}

const CANCEL_RETRIES = 5

function invalid(message: string): TaskServerError {
  return new TaskServerError('TASKAPP_ERR_INVALID_CONFIG', message)
}

function unavailable(what: string, err: unknown): TaskServerError {
  const reason = err instanceof Error ? err.message : String(err)
  return new TaskServerError(
    'TASKAPP_ERR_JOB_STORE_UNAVAILABLE',
    `The Redis job store could not ${what} (${reason}); check that Redis is running and reachable at the \`redis\` option.`,
    { cause: err },
  )
}

function checkOptions(options: RedisJobStoreOptions) {
  const { maxJobs, ttlMs } = resolveStoreLimits(options)
  const prefix = options.prefix ?? 'taskapp:jobs:'
  const maxRunningMs = options.maxRunningMs ?? 86_400_000
  const cancelCheckIntervalMs = options.cancelCheckIntervalMs ?? 5000
  const redis: unknown = options.redis
  if (typeof redis === 'string') {
    if (!/^(rediss?|unix):\/\//.test(redis)) {
      throw invalid('redis must be a redis://, rediss:// or unix:// URL, or an ioredis client.')
    }
  } else if (
    typeof redis !== 'object' ||
    redis === null ||
    typeof (redis as { duplicate?: unknown }).duplicate !== 'function' ||
    typeof (redis as { evalsha?: unknown }).evalsha !== 'function'
  ) {
    throw invalid('redis must be a redis://, rediss:// or unix:// URL, or an ioredis client.')
  }
  if (typeof prefix !== 'string' || prefix === '') throw invalid('prefix must be a non-empty string.')
  if (!Number.isInteger(maxRunningMs) || maxRunningMs < 1) {
    throw invalid(`maxRunningMs must be a positive integer (got ${String(maxRunningMs)}).`)
  }
  if (!Number.isInteger(cancelCheckIntervalMs) || cancelCheckIntervalMs < 0) {
    throw invalid(`cancelCheckIntervalMs must be an integer >= 0 (got ${String(cancelCheckIntervalMs)}).`)
  }
  return { maxJobs, ttlMs: Math.round(ttlMs), prefix, maxRunningMs, cancelCheckIntervalMs }
}

/** Makes (or takes) the command connection and makes the subscriber; closes what it made on failure. */
async function connect(redis: string | RedisClientLike, logger: TaskAppLogger) {
  const onError = (err: Error) =>
    safeLog(logger, 'warn', { err }, 'task-server: Redis job store connection error')
  let cmd: CommandClient
  const ownsCmd = typeof redis === 'string'
  if (typeof redis === 'string') {
    const Redis = await loadIoredis()
    cmd = new Redis(redis, { lazyConnect: true, maxRetriesPerRequest: 2 })
    cmd.on('error', onError)
    try {
      await cmd.connect()
    } catch (err) {
      cmd.disconnect()
      throw unavailable('connect', err)
    }
  } else {
    cmd = redis as unknown as CommandClient
  }
  const sub = cmd.duplicate()
  sub.on('error', onError)
  return { cmd, sub, ownsCmd }
}

/** Ends a connection: QUIT when it is up (pending replies arrive first), else drops it. */
async function end(client: CommandClient | SubscriberClient): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect())
  else client.disconnect()
}

/**
 * Creates a {@link JobStore} on Redis, shared by every task app given the same Redis and prefix:
 * records (JSON, schema-checked on read: a corrupt one is logged and treated as missing), the
 * cluster-wide `maxJobs` cap with the memory store's eviction order, `ttlMs`, and cancellation
 * across processes (pub/sub, re-checked on reconnect and every `cancelCheckIntervalMs`). Each
 * change is one Lua script, so the cap and "a final record is kept" hold under concurrent writers.
 * Rejects with `TASKAPP_ERR_IOREDIS_MISSING` (URL given, ioredis not installed),
 * `TASKAPP_ERR_JOB_STORE_UNAVAILABLE` (Redis did not answer) or `TASKAPP_ERR_INVALID_CONFIG`.
 *
 * @example
 * ```ts
 * import { createRedisJobStore, createTaskApp } from '@taskapp/task-server'
 *
 * const jobStore = await createRedisJobStore({ redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' })
 * const app = createTaskApp({ ...config, jobStore })
 * // on shutdown, after app.lifecycle.close(): await jobStore.close()
 * ```
 */
export async function createRedisJobStore(options: RedisJobStoreOptions): Promise<RedisJobStore> {
  const { maxJobs, ttlMs, prefix, maxRunningMs, cancelCheckIntervalMs } = checkOptions(options)
  const logger = options.logger ?? silentLogger
  const { cmd, sub, ownsCmd } = await connect(options.redis, logger)
  const channel = `${prefix}cancel`
  const keyOf = (id: string) => `${prefix}job:${id}`
  const watchers = new Map<string, Set<() => void>>()
  let poll: ReturnType<typeof setInterval> | undefined
  let closed = false

  const run = async (script: LuaScript, args: (string | number)[], what: string): Promise<unknown> => {
    try {
      return await cmd.evalsha(script.sha, 0, ...args)
    } catch (err) {
      // Redis forgets scripts when it restarts: send the source once more.
      if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw unavailable(what, err)
      return cmd.eval(script.source, 0, ...args).catch((e: unknown) => {
        throw unavailable(what, e)
      })
    }
  }

  const readRaw = async (id: string): Promise<string | null> => {
    try {
      return await cmd.hget(keyOf(id), 'job')
    } catch (err) {
      throw unavailable(`read job ${id}`, err)
    }
  }

  const parse = (id: string, json: string): RolloutJob | undefined => {
    const parsed = parseJobRecord(id, json)
    if ('job' in parsed) return parsed.job
    const err = new TaskServerError(
      'TASKAPP_ERR_JOB_RECORD_CORRUPT',
      `The Redis record of job ${id} is not a valid job (${parsed.problem}); it is treated as missing.`,
    )
    safeLog(logger, 'warn', { err, jobId: id }, 'task-server: corrupt job record in Redis')
    return undefined
  }

  const fire = (id: string) => {
    const listeners = watchers.get(id)
    watchers.delete(id)
    for (const listener of listeners ?? []) listener()
    if (watchers.size === 0) stopPolling()
  }

  /** Reads the status of watched jobs and fires the watchers of the cancelled ones. */
  const check = async (ids: readonly string[]) => {
    await Promise.all(
      ids.map(async (id) => {
        const status = await cmd.hget(keyOf(id), 'status').catch(() => null)
        if (status === 'cancelled') fire(id)
      }),
    )
  }

  const stopPolling = () => {
    if (poll !== undefined) clearInterval(poll)
    poll = undefined
  }
  const startPolling = () => {
    if (poll !== undefined || cancelCheckIntervalMs === 0 || closed) return
    poll = globalThis.setInterval(() => void check([...watchers.keys()]), cancelCheckIntervalMs)
    poll.unref()
  }

  sub.on('message', (from, id) => {
    if (from === channel) fire(id)
  })
  // After a reconnect: subscribed again first, then re-read, so no cancel falls in between.
  sub.on('ready', () => {
    if (closed || watchers.size === 0) return
    void sub
      .subscribe(channel)
      .then(() => check([...watchers.keys()]))
      .catch(() => undefined)
  })
  try {
    await sub.subscribe(channel)
  } catch (err) {
    sub.disconnect()
    if (ownsCmd) cmd.disconnect()
    throw unavailable('subscribe to cancellations', err)
  }

  const close = async () => {
    if (closed) return
    closed = true
    stopPolling()
    watchers.clear()
    await Promise.all([end(sub), ownsCmd ? end(cmd) : undefined])
  }

  return {
    prefix,
    async put(job) {
      const args = [
        prefix,
        job.id,
        job.status,
        job.owner ?? '',
        JSON.stringify(job),
        maxJobs,
        ttlMs,
        maxRunningMs,
      ]
      if ((await run(SCRIPTS.put, args, `store job ${job.id}`)) === -1) throw jobStoreFull(maxJobs)
    },
    async get(id) {
      const json = await readRaw(id)
      return json === null ? undefined : parse(id, json)
    },
    async requestCancel(id, cancelled) {
      for (let attempt = 0; attempt < CANCEL_RETRIES; attempt++) {
        const raw = await readRaw(id)
        const current = raw === null ? undefined : parse(id, raw)
        if (raw === null || current === undefined) return undefined
        const next: RolloutJob = { ...cancelled(current), id, status: 'cancelled' }
        const args = [prefix, id, raw, JSON.stringify(next), ttlMs, maxRunningMs]
        const [state, json] = (await run(SCRIPTS.cancel, args, `cancel job ${id}`)) as [number, string?]
        if (state === 0) return undefined
        if (state === 3) return { job: next, changed: true }
        if (state === 1 && json !== undefined) {
          const job = parse(id, json)
          return job === undefined ? undefined : { job, changed: false }
        }
      }
      throw unavailable(`cancel job ${id}`, new Error('the record kept changing'))
    },
    onCancel(id, listener) {
      let listeners = watchers.get(id)
      if (listeners === undefined) watchers.set(id, (listeners = new Set()))
      listeners.add(listener)
      startPolling()
      void check([id])
      const own = listeners
      return () => {
        own.delete(listener)
        if (own.size === 0 && watchers.get(id) === own) watchers.delete(id)
        if (watchers.size === 0) stopPolling()
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  }
}
