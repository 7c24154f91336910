/**
 * The Redis store's connections: made from a URL with deadlines (or taken from the caller), each
 * command bounded by `commandTimeoutMs`, and ended without waiting on a stalled server.
 */
import { TaskServerError } from '../errors'
import { safeLog, type TaskAppLogger } from '../logger'
import { loadIoredis, type CommandClient, type SubscriberClient } from './load'

/** How long opening a connection may take (socket, then Redis's ready check). @internal */
export const CONNECT_TIMEOUT_MS = 5000

/** `TASKAPP_ERR_JOB_STORE_UNAVAILABLE`: Redis failed or did not answer `what`. @internal */
export function unavailable(what: string, err: unknown): TaskServerError {
  if (err instanceof TaskServerError) return err
  const reason = err instanceof Error ? err.message : String(err)
  return new TaskServerError(
    'TASKAPP_ERR_JOB_STORE_UNAVAILABLE',
    `The Redis job store could not ${what} (${reason}); check that Redis is running and reachable at the \`redis\` option.`,
    { cause: err },
  )
}

/** `TASKAPP_ERR_JOB_STORE_CLOSED`: a call after `close()`. @internal */
export function storeClosed(): TaskServerError {
  return new TaskServerError(
    'TASKAPP_ERR_JOB_STORE_CLOSED',
    'The Redis job store was closed with close(); create a new one with createRedisJobStore, and close the task app (lifecycle.close()) before its job store.',
  )
}

/**
 * Settles like `promise`, but rejects with `TASKAPP_ERR_JOB_STORE_UNAVAILABLE` (also wrapping
 * what `promise` rejects with) when it has not settled after `ms`. The timer is cleared either way.
 * @internal
 */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = globalThis.setTimeout(
      () => reject(new Error(`Redis did not answer within ${ms} ms, the commandTimeoutMs option`)),
      ms,
    )
    timer.unref()
  })
  try {
    return await Promise.race([promise, expired])
  } catch (err) {
    throw unavailable(what, err)
  } finally {
    clearTimeout(timer)
  }
}

/** The store's two connections; `ownsCmd` when the store made the command connection. @internal */
export interface Connections {
  readonly cmd: CommandClient
  readonly sub: SubscriberClient
  readonly ownsCmd: boolean
}

/**
 * Makes (or takes) the command connection and makes the subscriber (not yet connected). A URL
 * gets a client whose commands time out after `commandTimeoutMs` and whose connect gives up
 * after {@link CONNECT_TIMEOUT_MS}; it is closed again when it cannot connect.
 * @internal
 */
export async function connect(
  redis: string | object,
  commandTimeoutMs: number,
  logger: TaskAppLogger,
): Promise<Connections> {
  const onError = (err: Error) =>
    safeLog(logger, 'warn', { err }, 'task-server: Redis job store connection error')
  if (typeof redis !== 'string') {
    const cmd = redis as CommandClient
    const sub = cmd.duplicate()
    sub.on('error', onError)
    return { cmd, sub, ownsCmd: false }
  }
  const Redis = await loadIoredis()
  const cmd = new Redis(redis, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    commandTimeout: commandTimeoutMs,
    connectTimeout: CONNECT_TIMEOUT_MS,
  })
  cmd.on('error', onError)
  try {
    await withDeadline(cmd.connect(), CONNECT_TIMEOUT_MS + commandTimeoutMs, 'connect')
  } catch (err) {
    cmd.disconnect()
    throw err
  }
  const sub = cmd.duplicate()
  sub.on('error', onError)
  return { cmd, sub, ownsCmd: true }
}

/**
 * Ends a connection: QUIT when it is up (pending replies arrive first) within `ms`, else (not
 * connected, never connected, or Redis stalled) drops it. Never opens a connection.
 * @internal
 */
export async function end(client: CommandClient | SubscriberClient, ms: number): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect()
    return
  }
  await withDeadline(client.quit(), ms, 'close').catch(() => client.disconnect())
}
