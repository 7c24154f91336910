/**
 * The JSON the local backend sends: job status, events and the replies of create and cancel, in
 * the names synth-ai's clients read (reference: synth-jobs.md §1.2, §2). The status vocabulary is
 * the client's own ({@link JobStatus} in `../wire`), so the two sides cannot drift; the reply
 * shapes below are what this server writes (the client reads them leniently).
 */
import type { JobStatus } from '../wire'

/**
 * The states after which a job on this backend never changes (it does not pause): `succeeded`,
 * `failed`, `cancelled` (the client's `FINAL_STATUSES` add `paused`, which ends waiting).
 */
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled']

/** Event levels. */
export type EventLevel = 'debug' | 'info' | 'warning' | 'error'

/** One job event, as `/events` pages and `/events/stream` `data:` lines carry it. */
export interface JobEventWire {
  /** `learning.policy.<algo>.<thing>`, e.g. `learning.policy.gepa.candidate.evaluated`. */
  readonly type: string
  /** 1, 2, 3, ... per job, strictly increasing. */
  readonly seq: number
  readonly job_id: string
  /** RFC 3339. */
  readonly ts: string
  readonly timestamp: string
  readonly timestamp_ms: number
  readonly level: EventLevel
  readonly message: string
  readonly data: Readonly<Record<string, unknown>>
}

/** The best candidate as status reports it. */
export interface BestCandidateWire {
  readonly candidate_id: string
  /** The optimized system prompt: what clients read as the result. */
  readonly system_prompt: string
  /** Every message of the candidate's prompt (the initial ones with the system text replaced). */
  readonly messages: readonly { role: string; pattern: string }[]
}

/** Model usage the interceptor recorded for a job (sum over its upstream calls). */
export interface UsageWire {
  calls: number
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
}

/** `GET …/jobs/{id}`. */
export interface JobStatusWire {
  readonly job_id: string
  readonly id: string
  readonly status: JobStatus
  readonly algorithm: string
  readonly kind: string
  readonly system: { readonly id: string; readonly name: string }
  readonly created_at: string
  readonly started_at: string | null
  readonly finished_at: string | null
  /** Best validation reward so far (also as `best_score` for older clients). */
  readonly best_reward: number | null
  readonly best_score: number | null
  readonly best_candidate: BestCandidateWire | null
  readonly best_prompt: string | null
  readonly baseline_reward: number | null
  readonly baseline_score: number | null
  readonly error: string | null
  readonly error_code: string | null
  readonly generations_completed: number
  readonly candidates_evaluated: number
  readonly rollouts_used: number
  readonly rollout_budget: number | null
  readonly finish_reason: string | null
  readonly usage: UsageWire
  readonly metadata: Readonly<Record<string, unknown>>
  readonly lever_summary: null
  readonly sensor_frames: readonly unknown[]
  readonly lever_versions: Readonly<Record<string, unknown>>
  readonly best_lever_version: null
}

/** Reply of every create route. */
export interface CreateJobReplyWire {
  readonly job_id: string
  readonly id: string
  readonly status: JobStatus
  readonly kind: string
  readonly system: { readonly id: string; readonly name: string }
}

/** Reply of `POST …/{id}/cancel` and `PATCH …/{id}`. */
export interface CancelReplyWire {
  readonly job_id: string
  readonly status: JobStatus
  readonly message: string
  readonly attempt_id: null
}

/** `GET …/{id}/events?since_seq=&limit=`. */
export interface EventPageWire {
  readonly events: readonly JobEventWire[]
  /** The `seq` to pass as `since_seq` for the next page. */
  readonly next_seq: number
  readonly has_more: boolean
}

/**
 * What follows `learning.policy.<algo>.` in the event types the backend emits (the names of
 * synth-jobs.md §2.4).
 */
export const EVENT_NAMES = [
  'job.started',
  'baseline',
  'generation.started',
  'candidate.evaluated',
  'validation.scored',
  'frontier_updated',
  'candidate.new_best',
  'generation.completed',
  'progress',
  'validation.completed',
  'job.completed',
  'job.failed',
  'job.cancelled',
] as const

/** One of {@link EVENT_NAMES}. */
export type EventName = (typeof EVENT_NAMES)[number]

/** The full event type: `learning.policy.gepa.job.started`. */
export function eventType(algorithm: string, name: EventName): string {
  return `learning.policy.${algorithm}.${name}`
}

/** Whether an event name ends a job's stream. */
export function isTerminalEvent(name: string): boolean {
  return /\.job\.(completed|failed|cancelled)$/.test(name)
}
