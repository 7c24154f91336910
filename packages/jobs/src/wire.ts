/**
 * The wire shapes of Synth's prompt-learning job API, shared by the client (`PromptLearningJob`)
 * and the local backend (`@taskapp/jobs/backend`): routes per generation, the create bodies, status
 * values, event shapes and the small pure functions that read them. Types and pure functions only:
 * no I/O, no environment.
 *
 * Source: synth-ai's SDK (`synth_ai_core/src/api/jobs.rs`, `core/jobs_endpoints.rs`,
 * `sdk/optimization/internal/prompt_learning.py`, `sdk/optimization/models.py`) as summarised in
 * the package README ("Wire generations it speaks").
 */

/**
 * The three generations of the job API. `g3` ("offline jobs", `/api/v1/offline/jobs`) is the newest
 * and the one synth-ai's `run_in_process_job` speaks; `g2` (`/api/jobs/gepa`) and `g1`
 * (`/api/prompt-learning/online/jobs`) are older backends.
 */
export type WireGeneration = 'g3' | 'g2' | 'g1'

/** The algorithms a prompt-learning job runs. */
export type JobAlgorithm = 'gepa' | 'mipro'

/** The G3 `kind` of a job: `<algorithm>_<execution mode>`. */
export type JobKind = 'gepa_offline' | 'mipro_offline'

/**
 * A job's status, the strict G3 vocabulary (synth-ai's Rust client rejects anything else). Terminal:
 * `succeeded`, `failed`, `cancelled`; `paused` also ends streaming and waiting.
 */
export type JobStatus = 'pending' | 'queued' | 'running' | 'paused' | 'succeeded' | 'failed' | 'cancelled'

/** Every {@link JobStatus}, in lifecycle order. */
export const JOB_STATUSES: readonly JobStatus[] = [
  'pending',
  'queued',
  'running',
  'paused',
  'succeeded',
  'failed',
  'cancelled',
]

/** The statuses after which the job does not move on by itself (`paused` until resumed). */
export const FINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled', 'paused']

/** Whether `status` ends streaming and waiting: `succeeded`, `failed`, `cancelled` or `paused`. */
export function isFinalStatus(status: JobStatus): boolean {
  return FINAL_STATUSES.includes(status)
}

/** Lenient spellings older backends use (synth-ai's Python `PromptLearningResult.from_response`). */
const STATUS_ALIASES: Readonly<Record<string, JobStatus>> = {
  canceled: 'cancelled',
  completed: 'succeeded',
  complete: 'succeeded',
  success: 'succeeded',
  error: 'failed',
  in_progress: 'running',
}

/**
 * A status string read leniently, as synth-ai's Python client does: any case, the strict values,
 * `canceled`, `completed`/`success` (succeeded), `error` (failed), `in_progress` (running); anything
 * else reads as `pending`.
 */
export function normalizeStatus(raw: unknown): JobStatus {
  if (typeof raw !== 'string') return 'pending'
  const value = raw.trim().toLowerCase()
  if ((JOB_STATUSES as readonly string[]).includes(value)) return value as JobStatus
  return STATUS_ALIASES[value] ?? 'pending'
}

/** The routes of one generation, relative to the backend root (no `/api` in the root). */
export interface WireRoutes {
  /** `POST`: create a job. */
  readonly create: (algorithm: JobAlgorithm) => string
  /** `GET`: status, tried in order while the answer is 404. */
  readonly status: (jobId: string) => readonly string[]
  /** `GET ?since_seq&limit`: a page of events. */
  readonly events: (jobId: string) => string
  /** `GET` (`Accept: text/event-stream`): the event stream. */
  readonly stream: (jobId: string) => string
  /** How to cancel: G3 `PATCH` the job, older ones `POST …/cancel` (tried in order on 404). */
  readonly cancel: (jobId: string) => { readonly method: 'PATCH' | 'POST'; readonly paths: readonly string[] }
}

const id = encodeURIComponent
const G1_JOBS = '/api/prompt-learning/online/jobs'
const G3_JOBS = '/api/v1/offline/jobs'

/** The routes of each {@link WireGeneration}. */
export const WIRE_ROUTES: Readonly<Record<WireGeneration, WireRoutes>> = {
  g3: {
    create: () => G3_JOBS,
    status: (j) => [`${G3_JOBS}/${id(j)}`],
    events: (j) => `${G3_JOBS}/${id(j)}/events`,
    stream: (j) => `${G3_JOBS}/${id(j)}/events/stream`,
    cancel: (j) => ({ method: 'PATCH', paths: [`${G3_JOBS}/${id(j)}`] }),
  },
  g2: {
    create: (algorithm) => `/api/jobs/${algorithm}`,
    status: (j) => [
      `/api/jobs/${id(j)}`,
      `/api/policy-optimization/online/jobs/${id(j)}`,
      `${G1_JOBS}/${id(j)}`,
    ],
    events: (j) => `${G1_JOBS}/${id(j)}/events`,
    stream: (j) => `${G1_JOBS}/${id(j)}/events/stream`,
    cancel: (j) => ({ method: 'POST', paths: [`/api/jobs/${id(j)}/cancel`, `${G1_JOBS}/${id(j)}/cancel`] }),
  },
  g1: {
    create: () => G1_JOBS,
    status: (j) => [`${G1_JOBS}/${id(j)}`],
    events: (j) => `${G1_JOBS}/${id(j)}/events`,
    stream: (j) => `${G1_JOBS}/${id(j)}/events/stream`,
    cancel: (j) => ({ method: 'POST', paths: [`${G1_JOBS}/${id(j)}/cancel`] }),
  },
}

/** The order creates are tried in: the next one only when the previous answered 404 or 405. */
export const CREATE_ORDER: readonly WireGeneration[] = ['g3', 'g2', 'g1']

/** The G3 create body (`POST /api/v1/offline/jobs`). */
export interface OfflineCreateBody {
  readonly kind: JobKind
  readonly technique: 'discrete_optimization'
  readonly config_mode: 'DEFAULT'
  readonly system: { readonly name: string; readonly reuse: boolean }
  /** Always holds `prompt_learning`. */
  readonly config: { readonly prompt_learning: Record<string, unknown> } & Record<string, unknown>
  /** The caller's `metadata` override plus `backend_base_url` (`<root>/api`). */
  readonly metadata: Record<string, unknown>
  readonly auto_start: boolean
}

/** The G1/G2 create body (`POST /api/jobs/{algorithm}`, `POST /api/prompt-learning/online/jobs`). */
export interface LegacyCreateBody {
  readonly algorithm: JobAlgorithm
  readonly config_body: { readonly prompt_learning: Record<string, unknown> } & Record<string, unknown>
  readonly overrides: Record<string, unknown>
  /** G2 also carries `worker_token` here for a SynthTunnel task app. */
  readonly metadata: Record<string, unknown>
  readonly auto_start: boolean
}

/** The create reply: `job_id` (G3 requires it; G1/G2 may send `id`). */
export interface CreateResponse {
  readonly job_id?: string
  readonly id?: string
}

/** The G3 status reply (`GET /api/v1/offline/jobs/{id}`); G2 adds `best_score`/`best_prompt`. */
export interface StatusResponse {
  readonly job_id?: string
  readonly status: string
  readonly best_reward?: number | null
  readonly best_score?: number | null
  readonly best_candidate?: unknown
  readonly best_prompt?: unknown
  readonly error?: string | null
  readonly generations_completed?: number | null
  readonly candidates_evaluated?: number | null
  readonly [key: string]: unknown
}

/** The G3 cancel body (`PATCH /api/v1/offline/jobs/{id}`). */
export interface PatchJobBody {
  readonly state: 'cancelled' | 'paused' | 'running'
  readonly reason: string | null
}

/**
 * One event on the wire (the JSON of an SSE `data:` line, or one item of an events page). `type` is
 * required; `seq` rises by one per event of a job.
 */
export interface WireEvent {
  readonly type: string
  readonly seq?: number
  readonly job_id?: string
  readonly data?: Record<string, unknown>
  readonly id?: string
  readonly run_id?: string
  readonly ts?: string
  readonly timestamp?: string
  readonly timestamp_ms?: number
  readonly message?: string
  readonly level?: string
  readonly [key: string]: unknown
}

/** An events page reply: `{ events }` (a bare list is accepted too). */
export interface EventsPage {
  readonly events: readonly WireEvent[]
}

/** What an event is about, decided from its `type` (first match in this order). */
export type EventCategory =
  | 'generation'
  | 'baseline'
  | 'candidate'
  | 'frontier'
  | 'progress'
  | 'termination'
  | 'validation'
  | 'complete'
  | 'other'

const CATEGORY_RULES: ReadonlyArray<readonly [EventCategory, readonly string[]]> = [
  ['generation', ['.generation.started', '.generation.complete']],
  ['baseline', ['.baseline']],
  ['candidate', ['.candidate.evaluated', '.candidate.new_best', '.proposal.scored']],
  ['frontier', ['.frontier_updated']],
  ['progress', ['.progress', '.job.started', '.trial.', '.iteration.']],
  ['termination', ['.job.failed', '.job.cancelled', '.job.canceled', '.job.paused']],
  ['validation', ['.validation.scored', '.validation.completed']],
  ['complete', ['.job.completed']],
]

/** The {@link EventCategory} of an event type (`learning.policy.gepa.candidate.evaluated` → `candidate`). */
export function eventCategory(type: string): EventCategory {
  const t = type.toLowerCase()
  for (const [category, needles] of CATEGORY_RULES) {
    if (needles.some((n) => t.includes(n))) return category
  }
  return 'other'
}

const TERMINAL_SUFFIXES: ReadonlyArray<readonly [string, JobStatus]> = [
  ['job.completed', 'succeeded'],
  ['job.failed', 'failed'],
  ['job.cancelled', 'cancelled'],
  ['job.canceled', 'cancelled'],
  ['job.paused', 'paused'],
  ['job_completed', 'succeeded'],
  ['job_failed', 'failed'],
  ['job_cancelled', 'cancelled'],
]

/**
 * The status a terminal event ends the job with, or undefined: `…job.completed` (succeeded),
 * `…job.failed`, `…job.cancelled`/`canceled`, `…job.paused`, and `job_completed|failed|cancelled`,
 * exact or as a suffix, any case. `…generation.completed` is not terminal.
 */
export function terminalStatusOf(type: string): JobStatus | undefined {
  const t = type.toLowerCase()
  for (const [suffix, status] of TERMINAL_SUFFIXES) {
    if (t === suffix || t.endsWith(`.${suffix}`)) return status
  }
  return undefined
}

/** The object at `key` of `value`, when there is one. */
export function objectAt(value: unknown, key: string): Record<string, unknown> | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const inner = (value as Record<string, unknown>)[key]
  return typeof inner === 'object' && inner !== null && !Array.isArray(inner)
    ? (inner as Record<string, unknown>)
    : undefined
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined
}

/**
 * The prompt text of a candidate as backends give it: a string as is; else `system_prompt`,
 * `instruction`, `stages.main.instruction`, or the `pattern`/`content` of the first
 * `messages[role=system]` (the order synth-ai reads them in).
 */
export function promptTextOf(candidate: unknown): string | undefined {
  if (typeof candidate === 'string') return nonEmptyString(candidate)
  if (typeof candidate !== 'object' || candidate === null) return undefined
  const c = candidate as Record<string, unknown>
  const direct =
    nonEmptyString(c.system_prompt) ??
    nonEmptyString(c.instruction) ??
    nonEmptyString(objectAt(objectAt(c, 'stages'), 'main')?.instruction)
  if (direct !== undefined) return direct
  const messages = Array.isArray(c.messages) ? (c.messages as unknown[]) : []
  const system = messages.find(
    (m): m is Record<string, unknown> =>
      typeof m === 'object' && m !== null && (m as Record<string, unknown>).role === 'system',
  )
  return system === undefined ? undefined : (nonEmptyString(system.pattern) ?? nonEmptyString(system.content))
}

/** A finite number, or undefined. */
export function finiteNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined
}

/**
 * Whether `url` is a SynthTunnel URL: an http(s) URL whose path starts with `/s/rt_` (the route
 * token a SynthTunnel relay, Synth's or a self-hosted `@taskapp/tunnel-synth` relay, hands out).
 */
export function isSynthTunnelUrl(url: string): boolean {
  try {
    const parsed = new URL(url)
    return (
      (parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.pathname.startsWith('/s/rt_')
    )
  } catch {
    return false
  }
}

/** What a create body is built from (the output of the client's config builder). */
export interface CreateInput {
  readonly algorithm: JobAlgorithm
  /** The merged config; always holds `prompt_learning`. */
  readonly config: { readonly prompt_learning: Record<string, unknown> } & Record<string, unknown>
  readonly metadata: Record<string, unknown>
  readonly autoStart: boolean
}

/** The G3 body for `POST /api/v1/offline/jobs` (the worker token travels as a header only). */
export function offlineCreateBody(input: CreateInput): OfflineCreateBody {
  return {
    kind: `${input.algorithm}_offline`,
    technique: 'discrete_optimization',
    config_mode: 'DEFAULT',
    system: { name: `sdk-${input.algorithm}-offline`, reuse: true },
    config: input.config,
    metadata: input.metadata,
    auto_start: input.autoStart,
  }
}

/** The G1/G2 body; G2 also carries the SynthTunnel worker token as `metadata.worker_token`. */
export function legacyCreateBody(input: CreateInput, workerToken?: string): LegacyCreateBody {
  return {
    algorithm: input.algorithm,
    config_body: input.config,
    overrides: {},
    metadata: workerToken === undefined ? input.metadata : { ...input.metadata, worker_token: workerToken },
    auto_start: input.autoStart,
  }
}
