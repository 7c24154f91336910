/**
 * The cancel side of the Redis store for the jobs this process runs: a subscription to the cancel
 * channel on a connection of its own, a re-read of every watched job when that connection comes
 * back (a message sent while it was down is lost), and a periodic re-read besides.
 */
import { createCancelListeners } from '../cancel-listeners'
import { withDeadline } from './connection'
import type { SubscriberClient } from './load'

/** What {@link startCancelWatch} needs. @internal */
export interface CancelWatchOptions {
  readonly sub: SubscriberClient
  readonly channel: string
  /** Period of the re-read; 0 turns it off. */
  readonly intervalMs: number
  /** Deadline of the first SUBSCRIBE. */
  readonly timeoutMs: number
  /** The stored status of a job; null when unknown or unreadable (never rejects). */
  statusOf(id: string): Promise<string | null>
}

/** The watchers of the store. @internal */
export interface CancelWatch {
  /** Calls `listener` once when job `id` is cancelled (or soon, when it already is); returns the unwatch. */
  add(id: string, listener: () => void): () => void
  /** Stops the re-reads and forgets every listener; the caller ends the connection. */
  close(): void
}

/**
 * Subscribes (rejects with `TASKAPP_ERR_JOB_STORE_UNAVAILABLE` when Redis does not answer within
 * `timeoutMs`) and returns the {@link CancelWatch}.
 * @internal
 */
export async function startCancelWatch(o: CancelWatchOptions): Promise<CancelWatch> {
  let poll: ReturnType<typeof setInterval> | undefined
  let closed = false
  const stopPolling = () => {
    if (poll !== undefined) clearInterval(poll)
    poll = undefined
  }
  const listeners = createCancelListeners(stopPolling)
  /** Reads the status of watched jobs and fires the listeners of the cancelled ones. */
  const check = async (ids: readonly string[]) => {
    await Promise.all(
      ids.map(async (id) => {
        if ((await o.statusOf(id)) === 'cancelled' && !closed) listeners.fire(id)
      }),
    )
  }
  const startPolling = () => {
    if (poll !== undefined || o.intervalMs === 0 || closed) return
    // Reached at call time, so fake timers work in tests.
    poll = globalThis.setInterval(() => void check(listeners.ids()), o.intervalMs)
    poll.unref()
  }

  o.sub.on('message', (from, id) => {
    if (from === o.channel && !closed) listeners.fire(id)
  })
  // After a reconnect: subscribed again first, then re-read, so no cancel falls in between.
  o.sub.on('ready', () => {
    if (closed || listeners.size === 0) return
    void o.sub
      .subscribe(o.channel)
      .then(() => check(listeners.ids()))
      .catch(() => undefined)
  })
  await withDeadline(o.sub.subscribe(o.channel), o.timeoutMs, 'subscribe to cancellations')

  return {
    add(id, listener) {
      const stop = listeners.add(id, listener)
      startPolling()
      void check([id])
      return stop
    },
    close() {
      closed = true
      stopPolling()
      listeners.clear()
    },
  }
}
