/**
 * `createRedisJobStore`: the {@link JobStore} for several task-app replicas behind one load
 * balancer. Job records, results and cancellation live in Redis, so any replica answers
 * `GET /rollouts/:id` and `DELETE /rollouts/:id` for a job another replica runs.
 */
import { TaskServerError } from './errors'
import {
  jobStoreFull,
  resolveStoreLimits,
  type CancelOutcome,
  type JobCancellation,
  type JobStore,
  type RolloutJob,
} from './job-store'
import { safeLog, silentLogger, type TaskAppLogger } from './logger'
import { startCancelWatch, type CancelWatch } from './redis/cancel-watch'
import {
  CONNECT_TIMEOUT_MS,
  connect,
  end,
  storeClosed,
  unavailable,
  withDeadline,
  type Connections,
} from './redis/connection'
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
  /**
   * Longest wait for one Redis command, in milliseconds: past it the call rejects with
   * `TASKAPP_ERR_JOB_STORE_UNAVAILABLE` (the routes answer 503 `job_store_unavailable`) instead of
   * hanging on a stalled Redis. Also bounds `close()`. Opening a connection may take 5000 more.
   * @default 2000
   */
  commandTimeoutMs?: number
  /** Where connection errors and corrupt records are reported. @default silent */
  logger?: TaskAppLogger
}

/**
 * The Redis {@link JobStore}; `close()` (also `await using`) ends the connections it made. Every
 * call after `close()` rejects with `TASKAPP_ERR_JOB_STORE_CLOSED` (`onCancel` throws it) and
 * opens no connection.
 */
export interface RedisJobStore extends JobStore, AsyncDisposable {
  /** The key prefix in use. */
  readonly prefix: string
  put(job: RolloutJob): Promise<void>
  get(id: string): Promise<RolloutJob | undefined>
  requestCancel(id: string, cancellation: JobCancellation): Promise<CancelOutcome>
  onCancel(id: string, listener: () => void): () => void
  close(): Promise<void>
}

function invalid(message: string): TaskServerError {
  return new TaskServerError('TASKAPP_ERR_INVALID_CONFIG', message)
}

function isClient(redis: unknown): boolean {
  const r = redis as { duplicate?: unknown; evalsha?: unknown } | null
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.duplicate === 'function' &&
    typeof r.evalsha === 'function'
  )
}

function checkOptions(options: RedisJobStoreOptions) {
  const { maxJobs, ttlMs } = resolveStoreLimits(options)
  const prefix = options.prefix ?? 'taskapp:jobs:'
  const maxRunningMs = options.maxRunningMs ?? 86_400_000
  const cancelCheckIntervalMs = options.cancelCheckIntervalMs ?? 5000
  const commandTimeoutMs = options.commandTimeoutMs ?? 2000
  const redis: unknown = options.redis
  if (typeof redis === 'string' ? !/^(rediss?|unix):\/\//.test(redis) : !isClient(redis)) {
    throw invalid('redis must be a redis://, rediss:// or unix:// URL, or an ioredis client.')
  }
  if (typeof prefix !== 'string' || prefix === '') throw invalid('prefix must be a non-empty string.')
  if (!Number.isInteger(maxRunningMs) || maxRunningMs < 1) {
    throw invalid(`maxRunningMs must be a positive integer (got ${String(maxRunningMs)}).`)
  }
  if (!Number.isInteger(cancelCheckIntervalMs) || cancelCheckIntervalMs < 0) {
    throw invalid(`cancelCheckIntervalMs must be an integer >= 0 (got ${String(cancelCheckIntervalMs)}).`)
  }
  if (!Number.isInteger(commandTimeoutMs) || commandTimeoutMs < 1 || commandTimeoutMs > 2_147_483_647) {
    throw invalid(
      `commandTimeoutMs must be a positive integer of milliseconds (got ${String(commandTimeoutMs)}).`,
    )
  }
  return { maxJobs, ttlMs: Math.round(ttlMs), prefix, maxRunningMs, cancelCheckIntervalMs, commandTimeoutMs }
}

type Limits = ReturnType<typeof checkOptions>

/** The store's reads and scripts on the command connection, each bounded by `commandTimeoutMs`. */
function createCommands({ cmd }: Connections, limits: Limits, logger: TaskAppLogger) {
  const { prefix, commandTimeoutMs } = limits
  const keyOf = (id: string) => `${prefix}job:${id}`
  const bounded = <T>(promise: Promise<T>, what: string) => withDeadline(promise, commandTimeoutMs, what)

  const run = async (script: LuaScript, args: (string | number)[], what: string): Promise<unknown> => {
    try {
      return await bounded(cmd.evalsha(script.sha, 0, ...args), what)
    } catch (err) {
      // Redis forgets scripts when it restarts: send the source once more.
      const cause = err instanceof TaskServerError ? err.cause : err
      if (!(cause instanceof Error && cause.message.startsWith('NOSCRIPT'))) throw err
      return bounded(cmd.eval(script.source, 0, ...args), what)
    }
  }

  /** The record as stored (`cancel`: what a `requestCancel` laid over it), or undefined when corrupt. */
  const parse = (id: string, json: string, cancel?: string): RolloutJob | undefined => {
    const parsed = parseJobRecord(id, json, cancel === '' ? undefined : cancel)
    if ('job' in parsed) return parsed.job
    const err = new TaskServerError(
      'TASKAPP_ERR_JOB_RECORD_CORRUPT',
      `The Redis record of job ${id} is not a valid job (${parsed.problem}); it is treated as missing.`,
    )
    safeLog(logger, 'warn', { err, jobId: id }, 'task-server: corrupt job record in Redis')
    return undefined
  }

  return {
    async put(job: RolloutJob): Promise<void> {
      const { maxJobs, ttlMs, maxRunningMs } = limits
      const json = JSON.stringify(job)
      const args = [prefix, job.id, job.status, job.owner ?? '', json, maxJobs, ttlMs, maxRunningMs]
      if ((await run(SCRIPTS.put, args, `store job ${job.id}`)) === -1) throw jobStoreFull(maxJobs)
    },
    async get(id: string): Promise<RolloutJob | undefined> {
      const [json, cancel] = await bounded(cmd.hmget(keyOf(id), 'job', 'cancel'), `read job ${id}`)
      return json === null || json === undefined ? undefined : parse(id, json, cancel ?? undefined)
    },
    async requestCancel(id: string, { finishedAt, error }: JobCancellation): Promise<CancelOutcome> {
      const args = [prefix, id, JSON.stringify({ finishedAt, error }), limits.ttlMs, limits.maxRunningMs]
      const [state, json, cancel] = (await run(SCRIPTS.cancel, args, `cancel job ${id}`)) as [
        number,
        string?,
        string?,
      ]
      const job = state === 0 || json === undefined ? undefined : parse(id, json, cancel)
      return job === undefined ? undefined : { job, changed: state === 2 }
    },
    /** The `status` field of a job; null when unknown or Redis did not answer. */
    statusOf: (id: string): Promise<string | null> =>
      bounded(cmd.hget(keyOf(id), 'status'), `read job ${id}`).catch(() => null),
  }
}

/**
 * Creates a {@link JobStore} on Redis, shared by every task app given the same Redis and prefix:
 * records (JSON, schema-checked on read: a corrupt one is logged and treated as missing), the
 * cluster-wide `maxJobs` cap with the memory store's eviction order, `ttlMs`, and cancellation
 * across processes (pub/sub, re-checked on reconnect and every `cancelCheckIntervalMs`). Each
 * change is one Lua script, so the cap and "a final record is kept" hold under concurrent writers.
 * No call waits on Redis longer than `commandTimeoutMs`.
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
  const limits = checkOptions(options)
  const logger = options.logger ?? silentLogger
  const connections = await connect(options.redis, limits.commandTimeoutMs, logger)
  const { cmd, sub, ownsCmd } = connections
  const commands = createCommands(connections, limits, logger)
  let closed = false
  let watch: CancelWatch
  try {
    watch = await startCancelWatch({
      sub,
      channel: `${limits.prefix}cancel`,
      intervalMs: limits.cancelCheckIntervalMs,
      timeoutMs: CONNECT_TIMEOUT_MS + limits.commandTimeoutMs,
      statusOf: (id) => (closed ? Promise.resolve(null) : commands.statusOf(id)),
    })
  } catch (err) {
    sub.disconnect()
    if (ownsCmd) cmd.disconnect()
    throw unavailable('subscribe to cancellations', err)
  }

  /** Runs `call` unless the store is closed: then rejects, before any command is sent. */
  const open = async <T>(call: () => Promise<T>): Promise<T> => {
    if (closed) throw storeClosed()
    return call()
  }
  const close = async () => {
    if (closed) return
    closed = true
    watch.close()
    await Promise.all([
      end(sub, limits.commandTimeoutMs),
      ownsCmd ? end(cmd, limits.commandTimeoutMs) : undefined,
    ])
  }

  return {
    prefix: limits.prefix,
    put: (job) => open(() => commands.put(job)),
    get: (id) => open(() => commands.get(id)),
    requestCancel: (id, cancellation) => open(() => commands.requestCancel(id, cancellation)),
    onCancel(id, listener) {
      if (closed) throw storeClosed()
      return watch.add(id, listener)
    },
    close,
    [Symbol.asyncDispose]: close,
  }
}
