/** The public types of `PromptLearningJob`. */
import type { Dispatcher } from 'undici'
import type { EventCategory, JobStatus, WireGeneration } from '../wire'

/** Options of `PromptLearningJob.fromConfig`. Pass exactly one of `configPath` and `config`. */
export interface PromptLearningJobOptions {
  /** A TOML file with a `[prompt_learning]` table (synth-ai's format). */
  readonly configPath?: string
  /** The config as an object (the parsed TOML); not modified. */
  readonly config?: Record<string, unknown>
  /**
   * Synth backend base URL (http or https; a trailing `/`, `/api` or `/api/v1` is dropped).
   * @default `resolveSynthBackendUrl({ env })` of `@taskapp/core`: `SYNTH_BACKEND_URL_OVERRIDE`, `SYNTH_BACKEND_URL`, else https://api.usesynth.ai
   */
  readonly backendUrl?: string
  /**
   * The Synth API key, sent as `Authorization: Bearer` and `X-API-Key` on every call.
   * @default env.SYNTH_API_KEY
   */
  readonly apiKey?: string
  /**
   * The SynthTunnel worker token of the task app's tunnel (`InProcessTaskApp`'s `app.taskAppWorkerToken`),
   * sent as `X-SynthTunnel-Worker-Token` on create. Required when the task app URL is a SynthTunnel URL
   * (path `/s/rt_…`); never sent otherwise.
   * @default undefined
   */
  readonly workerToken?: string
  /**
   * synth-ai overrides: dot-notation keys merged into the config (`"prompt_learning.gepa.rollout.budget": 8`),
   * plus `task_url` (the task app URL, written to `prompt_learning.container_url`), `metadata` (sent
   * with the job) and `auto_start` (default true).
   * @default {}
   */
  readonly overrides?: Record<string, unknown>
  /**
   * Where `SYNTH_API_KEY`, `SYNTH_BACKEND_URL_OVERRIDE` and `SYNTH_BACKEND_URL` are read. Never written.
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>
  /**
   * Pause between two polls (events pages and status) when the event stream is not used.
   * @default 5000
   */
  readonly pollIntervalMs?: number
  /**
   * Deadline of one request (headers, and between body chunks of a JSON reply).
   * @default 30000
   */
  readonly requestTimeoutMs?: number
  /**
   * An event stream silent this long counts as dropped (the client catches up by paging, then reconnects).
   * @default 120000
   */
  readonly streamIdleTimeoutMs?: number
  /**
   * How many times in a row the event stream may fail (drop without delivering an event, or answer 5xx)
   * before the client polls pages of events for the rest of the job.
   * @default 3
   */
  readonly maxStreamFailures?: number
  /**
   * undici dispatcher to send with (not closed by the job); by default the job owns an `Agent`,
   * closed by `close()`.
   * @default a new undici Agent
   */
  readonly dispatcher?: Dispatcher
  /** Abort reading the config file. */
  readonly signal?: AbortSignal
}

/** A snapshot of the job from its status route. */
export interface JobSnapshot {
  readonly jobId: string
  /** The status, read leniently (see the README). */
  readonly status: JobStatus
  /** The status string as the backend sent it. */
  readonly rawStatus: string | undefined
  /** `best_reward` (G3), else `best_score` (G2). */
  readonly bestScore: number | undefined
  /** The best prompt's text from `best_candidate` (G3) or `best_prompt` (G2). */
  readonly bestPrompt: string | undefined
  /** `best_candidate` as sent. */
  readonly bestCandidate: unknown
  /** The failure text: `error`, `error_message`, `failure_reason` or `message`. */
  readonly error: string | undefined
  readonly generationsCompleted: number | undefined
  readonly candidatesEvaluated: number | undefined
  /** The reply body as sent. */
  readonly raw: Record<string, unknown>
}

/** One job event, normalised from the wire (`{ type, seq, job_id, data, ... }`). */
export interface JobEvent {
  /** e.g. `learning.policy.gepa.candidate.evaluated`. */
  readonly type: string
  /** The backend's sequence number; rises by one per event of a job. */
  readonly seq: number | undefined
  /** The event's id (`id`/`event_id`, or the SSE `id:` field when `seq` is absent). */
  readonly id: string | undefined
  readonly jobId: string | undefined
  /** What the event is about, from its type. */
  readonly category: EventCategory
  /** The status a terminal event ends the job with (`…job.completed` → `succeeded`). */
  readonly terminalStatus: JobStatus | undefined
  /** The event's `data` object (empty when it has none). */
  readonly data: Record<string, unknown>
  readonly message: string | undefined
  readonly level: string | undefined
  /** `ts` or `timestamp` as sent (RFC 3339). */
  readonly timestamp: string | undefined
  /** The event as sent. */
  readonly raw: Record<string, unknown>
}

/** One candidate's scores as the events give them. */
export interface CandidateScore {
  /** `candidate_id` or `version_id`. */
  readonly candidateId: string | undefined
  /** `accuracy`, else `reward`, `score` or `objectives.reward`. */
  readonly score: number | undefined
  readonly accepted: boolean | undefined
  readonly generation: number | undefined
  readonly parentId: string | undefined
  readonly isPareto: boolean | undefined
  /** From a validation event naming this candidate. */
  readonly validationScore: number | undefined
  readonly rank: number | undefined
}

/** A validation result as the events give it (`…validation.scored`, `…validation.completed`). */
export interface ValidationScore {
  readonly candidateId: string | undefined
  readonly rank: number | undefined
  readonly score: number | undefined
}

/** What a job produced: status from the status route, the rest from status and events. */
export interface JobResult {
  readonly jobId: string
  readonly status: JobStatus
  /** Status `best_reward`/`best_score`, else the events' best (`new_best`, `job.completed`, max candidate). */
  readonly bestScore: number | undefined
  /** Status `best_candidate`/`best_prompt` text, else the last `…candidate.new_best` `best_prompt`. */
  readonly bestPrompt: string | undefined
  readonly baselineScore: number | undefined
  /** Per-candidate scores in the order first seen. */
  readonly candidates: readonly CandidateScore[]
  readonly validation: readonly ValidationScore[]
  readonly generationsCompleted: number | undefined
  readonly candidatesEvaluated: number | undefined
  /** The failure text (status error, else the terminal event's `reason`/`message`). */
  readonly error: string | undefined
  /** The last status reply, as sent. */
  readonly raw: Record<string, unknown>
}

/** Options of `job.events()`. */
export interface EventsOptions {
  /** Stop iterating; the iterator rejects with `signal.reason`. */
  readonly signal?: AbortSignal
  /**
   * Start after this `seq` (events with `seq <= sinceSeq` are skipped); for resuming where an earlier
   * iteration stopped.
   * @default undefined (from the first event)
   */
  readonly sinceSeq?: number
}

/** Options of `job.waitUntilComplete()`. */
export interface WaitOptions {
  /**
   * Give up after this long with `TASKAPP_ERR_JOBS_TIMEOUT` (the job keeps running; `cancel()` stops it).
   * @default 3600000 (one hour, synth-ai's default)
   */
  readonly timeoutMs?: number
  /** Called with every event, in order, before the next one is read. */
  readonly onEvent?: (event: JobEvent) => void | Promise<void>
  /** Stop waiting; rejects with `signal.reason`. */
  readonly signal?: AbortSignal
}

/** Which wire generation a job was created with, and where. */
export interface SubmittedJob {
  readonly jobId: string
  readonly generation: WireGeneration
}
