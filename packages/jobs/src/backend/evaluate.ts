/**
 * Evaluating a candidate prompt: one rollout per seed against the task app, at most
 * `max_concurrent` at a time, each counted against the job's `rollout.budget`, each pointing the
 * task app's model calls at the candidate's interceptor URL for that rollout.
 */
import { randomBytes } from 'node:crypto'
import { JobsError } from '../errors'
import type { GepaSpec, PromptMessage } from './job-config'
import type { InterceptedCandidate } from './interceptor'
import { postRollout, RolloutCallError, type TaskAppAccess } from './task-app-client'

/** One scored rollout, with what the model saw and said. */
export interface RolloutRecord {
  readonly seed: number
  readonly reward: number
  readonly feedback: string
  readonly input: string
  readonly output: string
  /** The rollout failed (network, HTTP error, bad reply): scored 0. */
  readonly error?: string
}

/** A prompt under evaluation. */
export interface Candidate {
  readonly id: string
  /** Its text for the optimized message. */
  readonly text: string
  readonly messages: readonly PromptMessage[]
  readonly generation: number
  readonly parentId?: string
  /** Results per seed (a seed is never rolled out twice for one candidate). */
  readonly results: Map<number, RolloutRecord>
  readonly intercepted: InterceptedCandidate
  /** Mean validation reward, once validated. */
  validationScore?: number
}

/** Everything an evaluation needs from its job. */
export interface Evaluator {
  readonly spec: GepaSpec
  readonly access: TaskAppAccess
  /** Rollouts allowed and used so far. */
  readonly budget: { readonly limit: number; used: number }
  /** `<backend>/interceptor`: candidate URLs are `${interceptorBase}/<candidate>/<rollout>/v1`. */
  readonly interceptorBase: string
  readonly signal: AbortSignal
}

/** How many rollouts evaluating `candidate` on `seeds` costs (seeds already scored are free). */
export function rolloutCost(candidate: Candidate, seeds: readonly number[]): number {
  return seeds.filter((s) => !candidate.results.has(s)).length
}

/** The mean reward of `records` (0 for none). */
export function meanReward(records: readonly RolloutRecord[]): number {
  return records.length === 0 ? 0 : records.reduce((sum, r) => sum + r.reward, 0) / records.length
}

function rolloutBody(ev: Evaluator, candidate: Candidate, seed: number, traceId: string): unknown {
  const { spec } = ev
  return {
    trace_correlation_id: traceId,
    env: { seed, config: spec.envConfig, ...(spec.envName !== undefined && { env_name: spec.envName }) },
    policy: {
      policy_id: candidate.id,
      ...(spec.policyName !== undefined && { policy_name: spec.policyName }),
      config: { ...spec.policyConfig, inference_url: `${ev.interceptorBase}/${candidate.id}/${traceId}/v1` },
    },
    on_done: 'reset',
    safety: { max_time_s: Math.max(1, Math.ceil(ev.access.rolloutTimeoutMs / 1000)) },
  }
}

async function rolloutOne(ev: Evaluator, candidate: Candidate, seed: number): Promise<RolloutRecord> {
  const traceId = `trace_prompt-learning-${seed}-${randomBytes(6).toString('hex')}`
  ev.budget.used += 1
  try {
    const outcome = await postRollout(ev.access, rolloutBody(ev, candidate, seed, traceId), ev.signal)
    const capture = candidate.intercepted.captures.get(traceId)
    return {
      seed,
      reward: outcome.reward,
      feedback: outcome.feedback,
      input: capture?.input ?? '',
      output: capture?.output ?? '',
    }
  } catch (error) {
    if (!(error instanceof RolloutCallError)) throw error
    return {
      seed,
      reward: 0,
      feedback: `rollout failed: ${error.message}`,
      input: '',
      output: '',
      error: error.message,
    }
  } finally {
    candidate.intercepted.captures.delete(traceId)
  }
}

/**
 * Rolls `candidate` out on every seed of `seeds` it has no result for, `max_concurrent` at a time,
 * and returns its results on `seeds` in order. The caller checks the budget first.
 *
 * @throws {@link JobsError} `TASKAPP_ERR_JOBS_ROLLOUT_FAILED` when every new rollout failed (the
 * task app refuses the backend, or is down); `signal.reason` when the job is cancelled.
 */
export async function evaluate(
  ev: Evaluator,
  candidate: Candidate,
  seeds: readonly number[],
): Promise<RolloutRecord[]> {
  const todo = seeds.filter((s, i) => !candidate.results.has(s) && seeds.indexOf(s) === i)
  if (ev.budget.used + todo.length > ev.budget.limit) {
    throw new Error(`evaluate: ${todo.length} rollouts exceed the remaining budget`)
  }
  let next = 0
  const fresh: RolloutRecord[] = []
  const worker = async (): Promise<void> => {
    while (next < todo.length) {
      ev.signal.throwIfAborted()
      const seed = todo[next++] as number
      const record = await rolloutOne(ev, candidate, seed)
      candidate.results.set(seed, record)
      fresh.push(record)
    }
  }
  await Promise.all(Array.from({ length: Math.min(ev.spec.maxConcurrent, todo.length) }, worker))
  const failed = fresh.filter((r) => r.error !== undefined)
  if (fresh.length > 0 && failed.length === fresh.length) {
    throw new JobsError(
      'TASKAPP_ERR_JOBS_ROLLOUT_FAILED',
      `Every rollout of candidate ${candidate.id} failed; the first: ${failed[0]?.error ?? ''}`,
    )
  }
  return seeds.map((s) => candidate.results.get(s) as RolloutRecord)
}
