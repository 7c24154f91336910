/**
 * Wire schemas of the task-app contract (synth-ai `contracts.py`), written with zod. Field names
 * stay snake_case exactly as on the wire. Every object accepts extra keys (pydantic's
 * `extra="allow"`), and optional fields accept `null` because Python clients serialize absent
 * optionals as `null`.
 *
 * Checked against `synth_ai/sdk/container/_impl/contracts.py` @ff63005a (the newest, "container"
 * generation) and `synth_ai/sdk/localapi/_impl/contracts.py` @b18e1d2c (the "task app"
 * generation); what both generations send passes. See the README, "The wire contract".
 */
import { z } from 'zod'

const str = z.string()
const optStr = str.nullish()
const jsonRecord = z.record(z.string(), z.unknown())
const numberRecord = z.record(z.string(), z.number())
/** synth-ai strips `trace_correlation_id` and refuses it blank (the container generation). */
const traceCorrelationId = str.trim().min(1, 'trace_correlation_id must be a non-empty string')

/** `TaskInfo.task`. */
export const taskDescriptorSchema = z.looseObject({
  id: str,
  name: str,
  description: optStr,
  version: optStr,
})

/** `TaskInfo.dataset`. */
export const datasetInfoSchema = z.looseObject({
  id: optStr,
  name: optStr,
  version: optStr,
  splits: z.array(str).nullish(),
  default_split: optStr,
  description: optStr,
})

/** `TaskInfo.inference`. */
export const inferenceInfoSchema = z.looseObject({
  model: optStr,
  inference_url: optStr,
})

/** `TaskInfo.limits`. */
export const limitsInfoSchema = z.looseObject({
  max_turns: z.int().nullish(),
  max_response_tokens: z.int().nullish(),
  timeout_seconds: z.int().nullish(),
})

/**
 * A `TaskInfo`: what `/task_info?seed=N` answers for one seed and what `/info` is built from.
 *
 * @example
 * ```ts
 * taskInfoSchema.parse({ task: { id: 'banking77', name: 'Banking77' }, task_metadata: { seed: 1 } })
 * ```
 */
export const taskInfoSchema = z.looseObject({
  task: taskDescriptorSchema,
  dataset: datasetInfoSchema.default({}),
  inference: inferenceInfoSchema.default({}),
  limits: limitsInfoSchema.default({}),
  environment: optStr,
  task_metadata: jsonRecord.default({}),
})

// Defaults (`config: {}`, `output_mode: 'tool_calls'`, ...) are applied by plain functions after
// the parse rather than by zod transforms: same result, a fraction of the cost on the hot path.

/** `RolloutRequest.env`. */
export const rolloutEnvSchema = z.looseObject({
  env_id: optStr,
  env_name: optStr,
  config: jsonRecord.nullish(),
  seed: z.int().nullish(),
})

/** `RolloutRequest.policy`. */
export const rolloutPolicySchema = z.looseObject({
  policy_id: optStr,
  policy_name: optStr,
  config: jsonRecord.nullish(),
  output_mode: z.enum(['tool_calls', 'text', 'structured']).nullish(),
  structured_config: jsonRecord.nullish(),
})

/**
 * `RolloutRequest.safety`. `max_time_s` is an int in the container generation and a float in the
 * task-app generation: any positive number passes.
 */
export const rolloutSafetySchema = z.looseObject({
  max_time_s: z.number().positive().nullish(),
})

/**
 * One of `RolloutRequest.context_overrides` (synth-ai `ContextOverride`: `file_artifacts`,
 * `preflight_script`, `env_vars`, `mutation_type`, `created_at`, `override_id`). synth-ai
 * normalizes each object before validating it, so only "an object" is checked here.
 */
export const contextOverrideSchema = jsonRecord

/**
 * The body of `POST /rollout` (the current synth-ai contract), as a zod schema; the server applies
 * the defaults (`config: {}`, `output_mode: 'tool_calls'`, ...) after parsing. Useful to check a
 * request in a client or a test.
 *
 * @example
 * ```ts
 * const ok = rolloutRequestSchema.safeParse({ trace_correlation_id: 't', env: {}, policy: {} }).success // true
 * ```
 */
export const rolloutRequestSchema = z.looseObject({
  trace_correlation_id: traceCorrelationId,
  env: rolloutEnvSchema,
  policy: rolloutPolicySchema,
  on_done: optStr,
  safety: rolloutSafetySchema.nullish(),
  training_session_id: optStr,
  synth_base_url: optStr,
  context_overrides: z.array(contextOverrideSchema).nullish(),
  override_bundle_id: optStr,
  // Added by the container generation @ff63005a (long-horizon paired evals).
  planner_mode: z.enum(['direct', 'waypoint_planned']).nullish(),
  paired_eval: jsonRecord.nullish(),
  waypoint_plan_request: jsonRecord.nullish(),
})

type ParsedRequest = z.output<typeof rolloutRequestSchema>

/** A rollout request after validation, with synth-ai's defaults applied. */
export type RolloutRequestOutput = ParsedRequest & {
  env: ParsedRequest['env'] & { config: Record<string, unknown> }
  policy: ParsedRequest['policy'] & {
    config: Record<string, unknown>
    output_mode: 'tool_calls' | 'text' | 'structured'
  }
  on_done: string
  safety: NonNullable<ParsedRequest['safety']> & { max_time_s: number }
}

/**
 * Applies the defaults to a parsed request, in place: `env.config` / `policy.config` `{}`,
 * `policy.output_mode` `'tool_calls'`, `on_done` `'reset'`, `safety.max_time_s` 3600.
 */
export function applyRequestDefaults(parsed: ParsedRequest): RolloutRequestOutput {
  const out = parsed as RolloutRequestOutput
  out.env.config ??= {}
  out.policy.config ??= {}
  out.policy.output_mode ??= 'tool_calls'
  out.on_done ??= 'reset'
  if (parsed.safety == null) out.safety = { max_time_s: 3600 }
  else out.safety.max_time_s ??= 3600
  return out
}

/** `RolloutResponse.reward_info` (input alias: `metrics`), synth-ai's `RolloutMetrics`. */
export const rewardInfoSchema = z.looseObject({
  outcome_reward: z.number(),
  event_rewards: z.array(z.number()).nullish(),
  outcome_objectives: numberRecord.nullish(),
  event_objectives: z.array(numberRecord).nullish(),
  instance_objectives: z.array(numberRecord).nullish(),
  details: jsonRecord.nullish(),
  // Added by the container generation @ff63005a (long-horizon and multi-agent telemetry).
  horizon_bin_success: numberRecord.nullish(),
  eta: z.number().nullish(),
  reach: z.number().nullish(),
  pi_gap: z.number().nullish(),
  planner_used: z.boolean().nullish(),
  planner_failure_code: optStr,
  multi_agent: jsonRecord.nullish(),
})

/** One of `RolloutResponse.artifact` (synth-ai `Artifact`): `content` is a string or an object. */
export const artifactSchema = z.looseObject({
  content: z.union([str, jsonRecord]),
  content_type: optStr,
  metadata: jsonRecord.nullish(),
  artifact_id: optStr,
  trace_correlation_id: optStr,
  size_bytes: z.int().nullish(),
  sha256: optStr,
  storage: jsonRecord.nullish(),
  created_at: optStr,
  name: optStr,
  description: optStr,
})

/** `RolloutResponse.success_status` (synth-ai `SuccessStatus`): infrastructure status, not reward. */
export const successStatusSchema = z.enum([
  'success',
  'timeout',
  'network_error',
  'apply_failed',
  'runtime_error',
  'failure',
])

/**
 * What a rollout handler returns (the current synth-ai contract), as a zod schema.
 *
 * @example
 * ```ts
 * rolloutResponseSchema.parse({ trace_correlation_id: 't', reward_info: { outcome_reward: 1 } })
 * ```
 */
export const rolloutResponseSchema = z.looseObject({
  trace_correlation_id: traceCorrelationId,
  reward_info: rewardInfoSchema,
  trace: jsonRecord.nullish(),
  inference_url: optStr,
  artifact: z.array(artifactSchema).nullish(),
  success_status: successStatusSchema.nullish(),
  status_detail: optStr,
  override_application_results: z.array(jsonRecord).nullish(),
})

/** Query of `GET /task_info`: `seed` and `seeds`, both repeatable integers. */
const seedList = z
  .union([str, z.array(str)])
  .optional()
  .transform((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v]))
  .pipe(z.array(str.regex(/^-?\d{1,15}$/, 'expected an integer seed').transform(Number)))

export const taskInfoQuerySchema = z.looseObject({ seed: seedList, seeds: seedList })

/** One validation problem on the wire: a dotted path and a message. */
export interface ValidationIssue {
  /** Dotted path of the bad field (`env.seed`, `reward_info.outcome_reward`); `""` for the root. */
  path: string
  /** What is wrong with it. */
  message: string
}

/** Turns zod issues into `{ path, message }` pairs, with an optional path prefix. */
export function toIssues(error: z.ZodError, prefix: readonly PropertyKey[] = []): ValidationIssue[] {
  return error.issues.map((issue) => ({
    path: [...prefix, ...issue.path].map(String).join('.'),
    message: issue.message,
  }))
}

/** Summarizes issues in one line: `env.seed: expected int; policy: required`. */
export function describeIssues(issues: readonly ValidationIssue[], max = 5): string {
  const shown = issues.slice(0, max).map((i) => `${i.path || '(root)'}: ${i.message}`)
  if (issues.length > max) shown.push(`and ${issues.length - max} more`)
  return shown.join('; ')
}

/** A `TaskInfo` as a config or handler writes it (defaults not yet applied). */
export type TaskInfo = z.input<typeof taskInfoSchema>
/** A `TaskInfo` after validation (defaults applied), as served on the wire. */
export type TaskInfoOutput = z.output<typeof taskInfoSchema>
/** `TaskInfo.task`. */
export type TaskDescriptor = z.input<typeof taskDescriptorSchema>
/** `TaskInfo.dataset`. */
export type DatasetInfo = z.input<typeof datasetInfoSchema>
/** `TaskInfo.inference`. */
export type InferenceInfo = z.input<typeof inferenceInfoSchema>
/** `TaskInfo.limits`. */
export type LimitsInfo = z.input<typeof limitsInfoSchema>
/** A rollout request as sent on the wire (defaults not yet applied). */
export type RolloutRequestInput = z.input<typeof rolloutRequestSchema>
/** `RolloutResponse.reward_info` as a handler writes it. */
export type RewardInfo = z.input<typeof rewardInfoSchema>
/** What a rollout handler returns: `{ trace_correlation_id, reward_info: { outcome_reward, ... }, ... }`. */
export type RolloutResponse = z.input<typeof rolloutResponseSchema>

type ParsedResponse = z.output<typeof rolloutResponseSchema>

/** A validated rollout response, as it is sent on the wire (`outcome_objectives` and `details` filled in). */
export type RolloutResponseOutput = ParsedResponse & {
  reward_info: ParsedResponse['reward_info'] & {
    outcome_objectives: Record<string, number>
    details: Record<string, unknown>
  }
}

/** Applies the response defaults in place: `outcome_objectives` `{ reward: outcome_reward }`, `details` `{}`. */
export function applyResponseDefaults(parsed: ParsedResponse): RolloutResponseOutput {
  const out = parsed as RolloutResponseOutput
  out.reward_info.outcome_objectives ??= { reward: out.reward_info.outcome_reward }
  out.reward_info.details ??= {}
  return out
}
