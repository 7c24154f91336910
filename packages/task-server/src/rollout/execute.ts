/**
 * Runs the user's rollout handler for one {@link Run}: builds its context, enforces
 * `safety.max_time_s`, settles the outcome at once on abort, validates the response and reports
 * it to `onRolloutComplete`. No HTTP here: the routes decide what to do with the outcome.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { RolloutCompleteEvent, RolloutContext, RolloutRequest, TaskAppConfig } from '../config'
import { TaskServerError } from '../errors'
import { levelEnabled, safeLog, type TaskAppLogger } from '../logger'
import { abortedOutcome, thrownOutcome, validateResponse, type Outcome } from './outcome'
import { abortRun, runSignal, type Run, type RunRegistry } from './run'
import type { RolloutStats } from './stats'

/** What the executor needs from the app. */
export interface ExecutorOptions {
  rollout: TaskAppConfig['rollout']
  logger: TaskAppLogger
  /** Where a run is tracked once its handler goes async. */
  runs: RunRegistry
  /** The running count every outcome goes into. */
  stats: RolloutStats
  /** Called with every outcome (the `onRolloutComplete` hook); must not throw. */
  onComplete?: (event: RolloutCompleteEvent) => void
}

/**
 * Runs the handler for `run`. Returns the outcome directly when the handler answers synchronously
 * (no promise, no timer), else a promise of it that never rejects.
 */
export type RolloutExecutor = (
  run: Run,
  request: RolloutRequest,
  requestId: string,
  headers: IncomingHttpHeaders,
) => Outcome | Promise<Outcome>

/**
 * The longest delay a Node timer takes (2^31 - 1 ms); a longer one fires after 1 ms. The route
 * clamps `safety.max_time_s` to `limits.maxRolloutTimeS` (at most 2,147,483 s) already; this keeps
 * the executor safe on its own.
 */
const MAX_TIMER_MS = 2_147_483_647

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value instanceof Promise ||
    (typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function')
  )
}

/** The DEBUG line of a finished rollout (built only when DEBUG is on). */
function logRollout(logger: TaskAppLogger, run: Run, o: Outcome, request: RolloutRequest, requestId: string) {
  safeLog(
    logger,
    'debug',
    {
      requestId,
      trace_correlation_id: request.trace_correlation_id,
      mode: run.mode,
      status: o.ok ? 'completed' : o.jobStatus,
      ...(o.ok ? { reward: o.response.reward_info.outcome_reward } : { code: o.code }),
      ms: Math.round(o.durationMs * 10) / 10,
    },
    'task-server: rollout',
  )
}

/** Counts and logs the outcome, reports it to `onComplete` and hands it back. */
function report(
  options: ExecutorOptions,
  run: Run,
  o: Outcome,
  request: RolloutRequest,
  requestId: string,
): Outcome {
  options.stats.record(o)
  if (levelEnabled(options.logger, 'debug')) logRollout(options.logger, run, o, request, requestId)
  if (options.onComplete === undefined) return o
  options.onComplete(
    o.ok
      ? { request, response: o.response, durationMs: o.durationMs, requestId }
      : { request, error: o.error, durationMs: o.durationMs, requestId },
  )
  return o
}

/** Waits for a handler that returned a promise, racing it against aborts and `safety.max_time_s`. */
function settleAsync(
  options: ExecutorOptions,
  run: Run,
  result: PromiseLike<unknown>,
  request: RolloutRequest,
  requestId: string,
  started: number,
): Promise<Outcome> {
  const { runs, logger } = options
  // From here on the run is in flight: close() and DELETE must be able to find it.
  runs.track(run)
  const maxTime = request.safety.max_time_s
  const delayMs = Math.min(maxTime * 1000, MAX_TIMER_MS)
  const timer = globalThis.setTimeout(() => {
    abortRun(
      run,
      new TaskServerError(
        'TASKAPP_ERR_ROLLOUT_TIMEOUT',
        `The rollout ran longer than safety.max_time_s (${maxTime} s) and was aborted.`,
      ),
    )
  }, delayMs)
  timer.unref()
  const elapsed = () => performance.now() - started
  return new Promise<Outcome>((resolve) => {
    let finished = false
    // No listener on the signal (EventTarget listeners are slow on the hot path): every abort
    // goes through abortRun, which calls onAbort and settles the outcome at once.
    const finish = (o: Outcome) => {
      if (finished) return
      finished = true
      run.onAbort = undefined
      clearTimeout(timer)
      resolve(report(options, run, o, request, requestId))
    }
    run.onAbort = () => finish(abortedOutcome(run.abortReason, elapsed()))
    result.then(
      (raw) => {
        runs.handlerDone(run)
        if (run.aborted) finish(abortedOutcome(run.abortReason, elapsed()))
        else finish(validateResponse(raw, request, requestId, elapsed(), logger))
      },
      (err: unknown) => {
        runs.handlerDone(run)
        finish(
          run.aborted
            ? abortedOutcome(run.abortReason, elapsed())
            : thrownOutcome(err, request, requestId, elapsed(), logger),
        )
      },
    )
  })
}

/** Creates the {@link RolloutExecutor}. */
export function createExecutor(options: ExecutorOptions): RolloutExecutor {
  const { logger, runs } = options
  return (run, request, requestId, headers) => {
    const started = performance.now()
    if (run.aborted) {
      runs.handlerDone(run)
      return report(options, run, abortedOutcome(run.abortReason, 0), request, requestId)
    }
    const ctx: RolloutContext = {
      get signal() {
        return runSignal(run)
      },
      requestId,
      logger,
      mode: run.mode,
      headers,
    }
    let result: unknown
    try {
      result = options.rollout(request, ctx)
    } catch (err) {
      runs.handlerDone(run)
      const durationMs = performance.now() - started
      const outcome = run.aborted
        ? abortedOutcome(run.abortReason, durationMs)
        : thrownOutcome(err, request, requestId, durationMs, logger)
      return report(options, run, outcome, request, requestId)
    }
    if (isThenable(result)) return settleAsync(options, run, result, request, requestId, started)
    // Answered synchronously: nothing can have interleaved, no timer or promise is needed.
    runs.handlerDone(run)
    const outcome = validateResponse(result, request, requestId, performance.now() - started, logger)
    return report(options, run, outcome, request, requestId)
  }
}
