/**
 * The running count of rollouts: served, failed, cancelled, mean reward. Read through
 * `app.stats()`; summed up at INFO at most once per `statsLogIntervalMs` while rollouts end.
 */
import { levelEnabled, safeLog, type Logger } from '@taskapp/core'
import type { Outcome } from './outcome'

/** What `app.stats()` answers: the rollouts this app has finished since it was created. */
export interface TaskAppStats {
  /** Rollouts that ended, however they ended (sync and async). */
  readonly rollouts: number
  /** Rollouts that ended with a valid response. */
  readonly completed: number
  /** Rollouts that failed: the handler threw, returned an invalid response, or ran out of time. */
  readonly failed: number
  /** Rollouts cancelled: the caller went away, `DELETE /rollouts/:id`, or the app closing. */
  readonly cancelled: number
  /** Mean `reward_info.outcome_reward` of the completed rollouts; `undefined` before the first. */
  readonly meanReward: number | undefined
}

/** The counters, and the INFO summary they feed. */
export interface RolloutStats {
  /** Counts one finished rollout (cheap: a few additions, a level check). */
  record(outcome: Outcome): void
  snapshot(): TaskAppStats
  /** Stops the summary timer; logs a last summary when there is news since the previous one. */
  close(): void
}

/** How often the INFO summary may be logged, at most. */
export const DEFAULT_STATS_LOG_INTERVAL_MS = 10_000

/**
 * The running count. A summary is logged when a rollout ends and the last summary is at least
 * `intervalMs` old; otherwise one timer (unref'd) logs it when the interval is up, so the last
 * rollouts of a burst are summed up too. Nothing is logged while no rollout ends.
 */
export function createRolloutStats(logger: Logger, intervalMs: number): RolloutStats {
  let rollouts = 0
  let completed = 0
  let failed = 0
  let cancelled = 0
  let rewardSum = 0
  let lastLoggedAt = -Infinity
  let loggedRollouts = 0
  let timer: NodeJS.Timeout | undefined
  let closed = false

  const snapshot = (): TaskAppStats => ({
    rollouts,
    completed,
    failed,
    cancelled,
    meanReward: completed === 0 ? undefined : rewardSum / completed,
  })
  const summary = (): void => {
    timer = undefined
    if (loggedRollouts === rollouts) return
    lastLoggedAt = performance.now()
    loggedRollouts = rollouts
    const s = snapshot()
    safeLog(logger, 'info', { ...s, meanReward: roundReward(s.meanReward) }, 'task-server: rollouts')
  }

  return {
    record(outcome) {
      rollouts += 1
      if (outcome.ok) {
        completed += 1
        rewardSum += outcome.response.reward_info.outcome_reward
      } else if (outcome.jobStatus === 'cancelled') cancelled += 1
      else failed += 1
      if (closed || timer !== undefined || !levelEnabled(logger, 'info')) return
      const wait = lastLoggedAt + intervalMs - performance.now()
      if (wait <= 0) return summary()
      timer = globalThis.setTimeout(summary, wait)
      timer.unref()
    },
    snapshot,
    close() {
      if (closed) return
      closed = true
      clearTimeout(timer)
      if (levelEnabled(logger, 'info')) summary()
    },
  }
}

/** A mean reward shown with four decimals at most. */
function roundReward(value: number | undefined): number | undefined {
  return value === undefined ? undefined : Math.round(value * 10_000) / 10_000
}
