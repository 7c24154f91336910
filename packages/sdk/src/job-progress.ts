/**
 * Where a prompt-optimization job stands, read from its events: generation, rollouts used of the
 * budget, best and baseline scores. Pure: events in, a snapshot out (what `runInProcessJob`'s
 * `onStatus` and `taskapp optimize`'s progress view show).
 */
import type { JobEvent } from '@taskapp/jobs'

/** A job's progress so far, as its events tell it. Unknown values are `undefined`. */
export interface JobProgress {
  /** Milliseconds since `runInProcessJob` was called. */
  readonly elapsedMs: number
  /** The generation running (or last completed); `0` during the baseline. */
  readonly generation: number | undefined
  /** Generations planned (`job.started` `num_generations`). */
  readonly generations: number | undefined
  /** Rollouts run so far (`progress` `rollouts_completed`). */
  readonly rolloutsUsed: number | undefined
  /** The rollout budget (`progress` `rollouts_total`, `job.started` `rollout_budget`). */
  readonly rolloutBudget: number | undefined
  /** Best validation score so far (the baseline until a candidate beats it). */
  readonly bestScore: number | undefined
  /** The initial prompt's validation score. */
  readonly baselineScore: number | undefined
  /** `candidate.evaluated` events seen. */
  readonly candidatesEvaluated: number
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined
}

/** The first finite number among `data[keys]`. */
function first(data: Record<string, unknown>, ...keys: string[]): number | undefined {
  for (const key of keys) {
    const value = num(data[key])
    if (value !== undefined) return value
  }
  return undefined
}

/**
 * Folds job events into a {@link JobProgress}. Reads the event names of synth-ai's GEPA stream
 * (`…job.started`, `…baseline`, `…generation.started|completed`, `…candidate.evaluated`,
 * `…candidate.new_best`, `…progress`, `…job.completed`) by suffix, so any algorithm prefix works.
 *
 * @example
 * ```ts
 * const tracker = new JobProgressTracker(performance.now())
 * await job.waitUntilComplete({ onEvent: (e) => console.log(tracker.add(e)) })
 * ```
 */
export class JobProgressTracker {
  readonly #startedAt: number
  #generation: number | undefined
  #generations: number | undefined
  #rolloutsUsed: number | undefined
  #rolloutBudget: number | undefined
  #bestScore: number | undefined
  #baselineScore: number | undefined
  #candidates = 0

  /** `startedAt`: a `performance.now()` value elapsed time counts from. */
  constructor(startedAt: number) {
    this.#startedAt = startedAt
  }

  /** Takes one event into account and returns the progress after it. */
  add(event: JobEvent): JobProgress {
    const { type, data } = event
    const name = type.toLowerCase()
    if (name.endsWith('.job.started')) {
      this.#generations = first(data, 'num_generations', 'generations') ?? this.#generations
      this.#rolloutBudget = first(data, 'rollout_budget', 'rollouts_total') ?? this.#rolloutBudget
    } else if (name.endsWith('.baseline')) {
      this.#baselineScore = first(data, 'accuracy', 'baseline_score', 'score', 'reward')
      this.#generation ??= 0
      this.#raiseBest(this.#baselineScore)
    } else if (name.endsWith('.generation.started') || name.endsWith('.generation.completed')) {
      this.#generation = first(data, 'generation') ?? this.#generation
      if (name.endsWith('completed')) this.#raiseBest(first(data, 'best_accuracy', 'best_score'))
    } else if (name.endsWith('.candidate.evaluated')) {
      this.#candidates += 1
    } else if (name.endsWith('.candidate.new_best') || name.endsWith('.job.completed')) {
      this.#raiseBest(first(data, 'best_score', 'accuracy', 'score'))
      this.#baselineScore = first(data, 'baseline_score') ?? this.#baselineScore
    } else if (name.endsWith('.progress')) {
      this.#rolloutsUsed = first(data, 'rollouts_completed') ?? this.#rolloutsUsed
      this.#rolloutBudget = first(data, 'rollouts_total') ?? this.#rolloutBudget
      this.#raiseBest(first(data, 'best_score'))
      this.#baselineScore ??= first(data, 'baseline_score')
    }
    return this.snapshot()
  }

  /** Sets the rollouts used from the job's final status (`rollouts_used`), when the events gave none later. */
  settle(raw: Record<string, unknown>): JobProgress {
    this.#rolloutsUsed = num(raw.rollouts_used) ?? this.#rolloutsUsed
    this.#rolloutBudget = num(raw.rollout_budget) ?? this.#rolloutBudget
    return this.snapshot()
  }

  /** The progress now. */
  snapshot(): JobProgress {
    return {
      elapsedMs: Math.round(performance.now() - this.#startedAt),
      generation: this.#generation,
      generations: this.#generations,
      rolloutsUsed: this.#rolloutsUsed,
      rolloutBudget: this.#rolloutBudget,
      bestScore: this.#bestScore,
      baselineScore: this.#baselineScore,
      candidatesEvaluated: this.#candidates,
    }
  }

  #raiseBest(score: number | undefined): void {
    if (score !== undefined && (this.#bestScore === undefined || score > this.#bestScore))
      this.#bestScore = score
  }
}
