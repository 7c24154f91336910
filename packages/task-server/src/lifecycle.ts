/**
 * The life of a task app: startup hooks in the background, readiness, and a graceful close that
 * cancels the work in flight, waits for it within a grace period and runs the shutdown hooks.
 */
import { raceAbort, settleWithin } from './async-utils'
import type { LifecycleHook } from './config'
import { TaskServerError } from './errors'
import { safeLog, type TaskAppLogger } from './logger'

/** Where the task server is in its life: `/health` answers 200 only in `ready` (not the in-process app's lifecycle). */
export type TaskServerState = 'starting' | 'ready' | 'failed' | 'closing' | 'closed'

/**
 * @deprecated Renamed {@link TaskServerState} (the in-process app's lifecycle is
 * `InProcessTaskAppState`); this alias goes in the next minor.
 */
export type TaskAppState = TaskServerState

/** Start and stop of a task app, on `app.lifecycle`. */
export interface TaskAppLifecycle extends AsyncDisposable {
  /** Current state; `/health` answers 200 only in `ready`. */
  readonly state: TaskServerState
  /**
   * Resolves when every startup hook has finished; rejects with `TASKAPP_ERR_STARTUP_FAILED`
   * (the hook's error as `cause`) if one threw, or with `signal.reason`.
   */
  ready(options?: { signal?: AbortSignal }): Promise<void>
  /**
   * Stops taking requests (503 `shutting_down`), cancels running rollouts (their `AbortSignal`
   * fires), waits for them up to `graceMs`, then runs the shutdown hooks in order and closes the default
   * job store. Idempotent: every call returns the same outcome. Rejects with
   * `TASKAPP_ERR_SHUTDOWN_FAILED` if a shutdown hook threw (the others still run), or with
   * `signal.reason` (the signal also ends the grace wait early).
   */
  close(options?: { signal?: AbortSignal; graceMs?: number }): Promise<void>
}

/** What the lifecycle runs and stops. */
export interface LifecycleOptions {
  startupHooks: readonly LifecycleHook[]
  shutdownHooks: readonly LifecycleHook[]
  logger: TaskAppLogger
  /** Cancels the work in flight with `reason`; resolves once it has settled (waited for up to the grace period). */
  drain(reason: TaskServerError): Promise<unknown>
  /** The last step of close, after the shutdown hooks (e.g. closing the app's own job store). */
  release(): void | Promise<void>
}

/** The lifecycle plus what the app's middleware reads from it. */
export interface LifecycleControl {
  readonly lifecycle: TaskAppLifecycle
  /** Fires when close() begins; its reason is a `TASKAPP_ERR_ROLLOUT_CANCELLED` error. */
  readonly signal: AbortSignal
  /** The current state (the same as `lifecycle.state`). */
  readonly state: () => TaskServerState
}

const DEFAULT_GRACE_MS = 5000

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Runs the shutdown hooks in order; returns what they threw. `signal` aborts the hooks' signal. */
async function runShutdownHooks(
  hooks: readonly LifecycleHook[],
  logger: TaskAppLogger,
  signal: AbortSignal | undefined,
): Promise<unknown[]> {
  const errors: unknown[] = []
  const hookAbort = new AbortController()
  const onAbort = () => hookAbort.abort(signal?.reason)
  if (signal?.aborted) onAbort()
  else signal?.addEventListener('abort', onAbort, { once: true })
  try {
    for (const hook of hooks) {
      try {
        await hook({ signal: hookAbort.signal, logger })
      } catch (err) {
        errors.push(err)
        safeLog(logger, 'error', { err }, 'task-server: a shutdown hook failed')
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
  return errors
}

/** Starts the startup hooks now and returns the lifecycle. */
export function createLifecycle(options: LifecycleOptions): LifecycleControl {
  const { logger } = options
  let state: TaskServerState = 'starting'
  const abort = new AbortController()

  const startup: Promise<void> = (async () => {
    for (const hook of options.startupHooks) {
      abort.signal.throwIfAborted()
      await hook({ signal: abort.signal, logger })
    }
    if (state === 'starting') state = 'ready'
  })().catch((err: unknown) => {
    if (state === 'starting') state = 'failed'
    safeLog(logger, 'error', { err }, 'task-server: a startup hook failed; /health stays 503')
    throw new TaskServerError(
      'TASKAPP_ERR_STARTUP_FAILED',
      `A startup hook failed (${errorMessage(err)}); fix the hook and create the app again.`,
      { cause: err },
    )
  })
  startup.catch(() => {}) // reported through ready() and /health, never as an unhandled rejection

  async function doClose(graceMs: number, signal: AbortSignal | undefined): Promise<void> {
    state = 'closing'
    const reason = new TaskServerError('TASKAPP_ERR_ROLLOUT_CANCELLED', 'The task app is closing.')
    abort.abort(reason)
    const deadline = Date.now() + graceMs
    await settleWithin(startup, graceMs, signal)
    await settleWithin(options.drain(reason), deadline - Date.now(), signal)
    const errors = await runShutdownHooks(options.shutdownHooks, logger, signal)
    await options.release()
    state = 'closed'
    if (errors.length > 0) {
      throw new TaskServerError(
        'TASKAPP_ERR_SHUTDOWN_FAILED',
        `${errors.length} shutdown step(s) failed (${errors.map(errorMessage).join('; ')}); see the cause and fix the hook.`,
        { cause: errors.length === 1 ? errors[0] : new AggregateError(errors, 'shutdown hooks failed') },
      )
    }
  }

  let closing: Promise<void> | undefined
  const lifecycle: TaskAppLifecycle = {
    get state() {
      return state
    },
    ready: (opts = {}) => raceAbort(startup, opts.signal),
    close: (opts = {}) => {
      closing ??= doClose(opts.graceMs ?? DEFAULT_GRACE_MS, opts.signal)
      return raceAbort(closing, opts.signal)
    },
    [Symbol.asyncDispose]: () => lifecycle.close(),
  }
  return { lifecycle, signal: abort.signal, state: () => state }
}
