import type { IncomingHttpHeaders } from 'node:http'
import type { z } from 'zod'
import type { ContainerAuthConfig } from './container-auth/config'
import type { TaskServerError } from './errors'
import type { JobStore } from './job-store'
import type { TaskAppLogger } from './logger'
import type { ProxyConfig } from './proxy'
import {
  type RolloutResponse,
  type RolloutResponseOutput,
  type TaskInfo,
  type RolloutRequestOutput,
} from './schemas'

type ParsedRequest = RolloutRequestOutput

/**
 * A validated rollout request, as the handler receives it (snake_case, defaults applied:
 * `env.config` and `policy.config` are objects, `policy.output_mode` defaults to `tool_calls`,
 * `safety.max_time_s` to 3600, `on_done` to `reset`).
 *
 * @example
 * ```ts
 * const request: RolloutRequest = {
 *   trace_correlation_id: 'trace-1',
 *   env: { env_name: 'banking77', seed: 3, config: {} },
 *   policy: { policy_name: 'p', config: { model: 'gpt-4o-mini' }, output_mode: 'tool_calls' },
 *   on_done: 'reset',
 *   safety: { max_time_s: 3600 },
 * }
 * ```
 */
export type RolloutRequest<
  TEnvConfig = Record<string, unknown>,
  TPolicyConfig = Record<string, unknown>,
> = ParsedRequest & {
  env: ParsedRequest['env'] & { config: TEnvConfig }
  policy: ParsedRequest['policy'] & { config: TPolicyConfig }
}

/** What a rollout handler gets beside the request. */
export interface RolloutContext {
  /** Fires when the client disconnects (sync), the job is cancelled (`DELETE /rollouts/:id`), `safety.max_time_s` passes, or the app closes. */
  readonly signal: AbortSignal
  /** The request id (`X-Request-Id` if the caller sent a safe one, else a UUID); also the job id of an async rollout. */
  readonly requestId: string
  /** The app's logger. */
  readonly logger: TaskAppLogger
  /** `sync` when the caller waits for the answer, `async` when it runs as a job from the start. */
  readonly mode: 'sync' | 'async'
  /** The HTTP request headers (for tracing headers and the like). */
  readonly headers: IncomingHttpHeaders
}

/** What `onRolloutComplete` receives after every rollout, successful or not. */
export interface RolloutCompleteEvent {
  /** The validated request. */
  readonly request: RolloutRequest
  /** The validated response, when the rollout succeeded. */
  readonly response?: RolloutResponseOutput
  /** Wall time of the handler in milliseconds. */
  readonly durationMs: number
  /** The failure, when it did not succeed (a {@link TaskServerError} with the handler's error as `cause`). */
  readonly error?: TaskServerError
  /** The request id / job id. */
  readonly requestId: string
}

/** Hook called after every rollout. Its failures are logged and never affect the rollout. */
export type RolloutCompleteHook = (event: RolloutCompleteEvent) => void | Promise<void>

/** What startup and shutdown hooks receive. */
export interface LifecycleHookContext {
  /** Startup hooks: aborted when the app closes. Shutdown hooks: aborted when the signal given to `close()` aborts. */
  readonly signal: AbortSignal
  /** The app's logger. */
  readonly logger: TaskAppLogger
}

/** A startup or shutdown hook. */
export type LifecycleHook = (ctx: LifecycleHookContext) => void | Promise<void>

/** Rubrics advertised in `GET /info` as `rubrics: { outcome, events }`. */
export interface RubricBundle {
  /** Outcome rubric (any JSON). */
  outcome?: unknown
  /** Event rubric (any JSON). */
  events?: unknown
}

/** Limits of the HTTP layer: body size, deadlines, and what one caller may ask for. */
export interface TaskAppLimits {
  /**
   * Largest JSON body accepted, in bytes or as a string like `'10mb'`. Larger bodies get 413.
   * @default '10mb'
   */
  bodyLimit?: number | string
  /**
   * Deadline of `provideTasksetDescription` / `provideTaskInstances` behind `GET /task_info`;
   * past it the caller gets 504 `request_timeout` and the `signal` given to them fires. Rollouts
   * are bounded by the request's `safety.max_time_s` instead, the proxy by `proxy.timeoutMs`.
   * @default 30000
   */
  requestTimeoutMs?: number
  /**
   * The largest `safety.max_time_s` a rollout gets, in seconds. A request asking more (or sending
   * none: synth-ai's default is 3600) is clamped to it, and the handler sees the clamped value.
   * At most 2,147,483 (the longest Node timer, in whole seconds).
   * @default 3600
   */
  maxRolloutTimeS?: number
  /**
   * Unfinished async jobs (pending or running) one owner may have at once: one API key, the
   * issuer of container tokens, or the anonymous caller when no auth is required. A new job past
   * it gets 429 `job_quota_exceeded` for that owner only; a sync rollout past `syncTimeoutMs`
   * stays a sync call instead. Counted per process. `Infinity` turns the quota off.
   * @default 250 (a quarter of the default job store's 1000)
   */
  maxJobsPerOwner?: number
  /**
   * Most seeds one `GET /task_info` may ask for (`seed` and `seeds` together); more get 422
   * `invalid_request`.
   * @default 1000
   */
  maxTaskInfoSeeds?: number
}

/**
 * Everything `createTaskApp` needs. camelCase here; the JSON on the wire keeps synth-ai's
 * snake_case names. Use {@link defineTaskAppConfig} to get the request types inferred from
 * `envConfigSchema` / `policyConfigSchema`.
 *
 * @example
 * ```ts
 * const config = defineTaskAppConfig({
 *   appId: 'banking77',
 *   name: 'Banking77 intent classification',
 *   description: 'Classify a customer query into one of 77 intents.',
 *   provideTasksetDescription: () => ({ splits: ['train', 'test'] }),
 *   provideTaskInstances: (seeds) => seeds.map((seed) => ({ task: { id: 'banking77', name: 'Banking77' }, task_metadata: { seed } })),
 *   rollout: async (request) => ({
 *     trace_correlation_id: request.trace_correlation_id,
 *     reward_info: { outcome_reward: 1 },
 *   }),
 * })
 * ```
 */
export interface TaskAppConfig<
  TEnvConfig = Record<string, unknown>,
  TPolicyConfig = Record<string, unknown>,
> {
  /** Stable id of the task app; `GET /` answers `{ status: 'ok', service: appId }`. */
  appId: string
  /** Human-readable name. */
  name: string
  /** What the task app does. */
  description: string
  /**
   * Served by `GET /info` and the base of each task instance.
   * @default { task: { id: appId, name }, dataset: { id: appId }, inference: {}, limits: {} }
   */
  baseTaskInfo?: TaskInfo
  /** What `GET /task_info` without seeds answers, as `{ taskset: <this> }`. */
  provideTasksetDescription: (ctx: { signal: AbortSignal }) => unknown
  /** One TaskInfo per seed, in order, for `GET /task_info?seed=...`. */
  provideTaskInstances: (
    seeds: number[],
    ctx: { signal: AbortSignal },
  ) => Iterable<TaskInfo> | Promise<Iterable<TaskInfo>>
  /**
   * Runs one rollout. Gets a validated request and returns
   * `{ trace_correlation_id, reward_info: { outcome_reward }, ... }` (see {@link RolloutResponse}).
   * Honour `ctx.signal`. (Declared as a method so that a config typed through the schemas stays
   * assignable to a plain `TaskAppConfig`.)
   */
  rollout(
    request: RolloutRequest<TEnvConfig, TPolicyConfig>,
    ctx: RolloutContext,
  ): RolloutResponse | Promise<RolloutResponse>
  /** Extra schema for `env.config`; invalid configs get 422 before the handler runs. */
  envConfigSchema?: z.ZodType<TEnvConfig>
  /** Extra schema for `policy.config`; invalid configs get 422 before the handler runs. */
  policyConfigSchema?: z.ZodType<TPolicyConfig>
  /**
   * Rubrics advertised in `GET /info`.
   * @default undefined (served as `rubrics: null`)
   */
  rubrics?: RubricBundle
  /**
   * Whether every route except `/` needs an API key.
   * @default true
   */
  requireApiKey?: boolean
  /**
   * Allowed API keys. When given they are used instead of `ENVIRONMENT_API_KEY` and
   * `ENVIRONMENT_API_KEY_ALIASES`, which are otherwise read at request time.
   * @default undefined (read the environment)
   */
  apiKeys?: readonly string[]
  /**
   * HTTP status of a missing or wrong key. synth-ai answers 400; choose 401 for HTTP semantics
   * (a `WWW-Authenticate: Bearer` header is added then).
   * @default 400
   */
  authFailureStatus?: 400 | 401
  /**
   * Container tokens (newer Synth generation). With trusted keys (here or in
   * `SYNTH_CONTAINER_TRUSTED_PUBKEYS`) a request passes with a valid token for the route's scope or
   * a valid API key; otherwise it gets 401 `auth_missing` / `auth_invalid`, and `/health` is open.
   * @default undefined (read SYNTH_CONTAINER_TRUSTED_PUBKEYS, SYNTH_CONTAINER_AUTH_MODE and SYNTH_CONTAINER_AUTH_ISSUER once)
   */
  containerAuth?: ContainerAuthConfig
  /**
   * CORS origins. `undefined` adds no CORS headers; `[]` allows any origin (as synth-ai does).
   * @default undefined
   */
  corsOrigins?: readonly string[]
  /** Run in order, in the background, as soon as the app is created; `/health` answers 503 until they finish. */
  startupHooks?: readonly LifecycleHook[]
  /** Run in order by `lifecycle.close()`, after running rollouts ended. */
  shutdownHooks?: readonly LifecycleHook[]
  /** Body size, request deadline, rollout time cap, per-owner job quota, seeds per `/task_info`. */
  limits?: TaskAppLimits
  /**
   * A sync `POST /rollout` still running after this many milliseconds is turned into a job: the
   * caller gets 202 with its id and a `Location`, and the rollout goes on.
   * @default undefined (never; the caller waits until the handler ends or `safety.max_time_s`)
   */
  syncTimeoutMs?: number
  /**
   * How often, at most, the running count (`app.stats()`: rollouts, failures, mean reward) is
   * logged at INFO while rollouts end; nothing is logged while none does.
   * @default 10000
   */
  statsLogIntervalMs?: number
  /**
   * Where async rollout jobs are kept. A store you pass stays yours: `lifecycle.close()` does not
   * close it (it closes the default one). It must keep every field of a record, `owner` included:
   * only the job's owner can read or cancel it.
   * @default createMemoryJobStore() (1000 jobs, finished ones evicted after 10 minutes)
   */
  jobStore?: JobStore
  /** Called after every rollout (for tracking, e.g. {@link createMlflowTracker}); failures are logged, never thrown. */
  onRolloutComplete?: RolloutCompleteHook
  /**
   * Serve `GET /debug/env` (which env keys are set, with 6-character prefixes). synth-ai has it on;
   * it is off here because it leaks key prefixes.
   * @default false
   */
  exposeDebugEnv?: boolean
  /** Optional OpenAI-compatible pass-through at `POST /proxy/v1/chat/completions`. */
  proxy?: ProxyConfig
  /**
   * Pino-compatible logger.
   * @default a silent logger (nothing is written anywhere)
   */
  logger?: TaskAppLogger
}

/**
 * Identity helper that infers the `env.config` / `policy.config` types from the schemas you give.
 *
 * @example
 * ```ts
 * const config = defineTaskAppConfig({
 *   appId: 'echo', name: 'Echo', description: 'Returns reward 1',
 *   envConfigSchema: z.object({ split: z.enum(['train', 'test']).default('train') }),
 *   provideTasksetDescription: () => ({}),
 *   provideTaskInstances: () => [],
 *   rollout: (req) => ({ trace_correlation_id: req.trace_correlation_id, reward_info: { outcome_reward: req.env.config.split === 'train' ? 1 : 0 } }),
 * })
 * ```
 */
export function defineTaskAppConfig<
  TEnvConfig = Record<string, unknown>,
  TPolicyConfig = Record<string, unknown>,
>(config: TaskAppConfig<TEnvConfig, TPolicyConfig>): TaskAppConfig<TEnvConfig, TPolicyConfig> {
  return config
}

export { CONTAINER_AUTH_MODES } from './container-auth/config'
export type { ContainerAuthConfig, ContainerAuthMode } from './container-auth/config'
