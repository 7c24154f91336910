/**
 * One rollout of the ticket-routing task: pick the ticket the seed names, run the policy the
 * request names on it, score the answer.
 */
import type { Dataset, Label, Ticket } from './dataset'
import { isSplit } from './dataset'
import { ExampleError } from './errors'
import { selectPolicy, type PolicySelectOptions, type PolicySpec, type Prediction } from './policies'

/** The default split of a rollout whose request names none. */
export const DEFAULT_ROLLOUT_SPLIT = 'train'

/** The parts of a synth-ai rollout request the example reads (wire names, snake_case). */
export interface ClassificationRolloutRequest {
  trace_correlation_id: string
  env?: { seed?: number | null; config?: Record<string, unknown> | null } | null
  policy?: PolicySpec | null
}

/** The score of one answer. */
export interface Score {
  /** 1 when the predicted label equals the gold label, else 0. */
  readonly reward: 0 | 1
  readonly correct: boolean
}

/**
 * Exact-match scoring: reward 1 for the gold label, 0 for any other label or no label at all.
 *
 * @example
 * scorePrediction({ label: 'billing', raw: 'billing' }, 'billing') // { reward: 1, correct: true }
 */
export function scorePrediction(prediction: Prediction, gold: Label): Score {
  const correct = prediction.label === gold
  return { reward: correct ? 1 : 0, correct }
}

/**
 * The rollout response the example returns (synth-ai wire shape). A type literal rather than an
 * interface, so it is assignable to the task server's open (index-signature) response type.
 */
export type ClassificationRolloutResponse = {
  trace_correlation_id: string
  reward_info: {
    outcome_reward: number
    outcome_objectives: { reward: number }
    details: {
      example_id: string
      split: string
      seed: number
      expected: Label
      predicted: Label | null
      policy: string
      answer: string
      latency_ms: number
    }
  }
  success_status: 'success'
  inference_url?: string
  trace: {
    messages: { role: 'user' | 'assistant'; content: string }[]
  }
}

/** Everything {@link runClassificationRollout} needs besides the request. */
export interface RolloutDeps extends PolicySelectOptions {
  dataset: Dataset
  /** Aborts the policy call. @default undefined */
  signal?: AbortSignal
}

function readSplit(config: Record<string, unknown> | null | undefined): string {
  const split = config?.split ?? DEFAULT_ROLLOUT_SPLIT
  if (typeof split !== 'string' || !isSplit(split)) {
    throw new ExampleError(
      'TASKAPP_ERR_EXAMPLE_UNKNOWN_SPLIT',
      `env.config.split must be one of train, validation, test; got ${JSON.stringify(split)}.`,
    )
  }
  return split
}

/**
 * Runs one rollout: `env.seed` (default 0) and `env.config.split` (default `train`) pick the
 * ticket; `policy` picks the policy (see `selectPolicy`); the answer is scored by exact match.
 *
 * @example
 * const response = await runClassificationRollout(
 *   { trace_correlation_id: 't-1', env: { seed: 3, config: { split: 'test' } }, policy: { policy_name: 'baseline' } },
 *   { dataset: loadDataset() },
 * )
 * response.reward_info.outcome_reward // 0 or 1
 */
export async function runClassificationRollout(
  request: ClassificationRolloutRequest,
  deps: RolloutDeps,
): Promise<ClassificationRolloutResponse> {
  const split = readSplit(request.env?.config)
  const seed = request.env?.seed ?? 0
  const ticket: Ticket = deps.dataset.exampleForSeed(seed, split)
  const policy = selectPolicy(request.policy ?? undefined, deps)
  const started = performance.now()
  const prediction = await policy.classify(ticket.text, deps.signal ? { signal: deps.signal } : {})
  const latencyMs = Math.round((performance.now() - started) * 1000) / 1000
  const score = scorePrediction(prediction, ticket.label)
  const inferenceUrl = request.policy?.config?.inference_url
  return {
    trace_correlation_id: request.trace_correlation_id,
    reward_info: {
      outcome_reward: score.reward,
      outcome_objectives: { reward: score.reward },
      details: {
        example_id: ticket.id,
        split,
        seed,
        expected: ticket.label,
        predicted: prediction.label,
        policy: policy.name,
        answer: prediction.raw,
        latency_ms: latencyMs,
      },
    },
    success_status: 'success',
    ...(typeof inferenceUrl === 'string' && inferenceUrl !== '' && { inference_url: inferenceUrl }),
    trace: {
      messages: [
        { role: 'user', content: ticket.text },
        { role: 'assistant', content: prediction.raw },
      ],
    },
  }
}
