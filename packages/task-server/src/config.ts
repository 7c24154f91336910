import type { IncomingHttpHeaders } from 'node:http'
import type { z } from 'zod'
import type { TrustedContainerKeyInput } from './container-auth/keys'
import { TaskServerError } from './errors'
import type { JobStore } from './job-store'
import type { TaskAppLogger } from './logger'
import type { ProxyConfig } from './proxy'
import {
  describeIssues,
  taskInfoSchema,
  toIssues,
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

/** Limits of the HTTP layer. */
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
}

/**
 * How container tokens are checked: `required` (the default when trusted keys are configured),
 * `optional_local` (also lets unsigned calls from a loopback socket through) or `disabled` (no
 * token check; API-key auth stays as configured).
 */
export type ContainerAuthMode = 'required' | 'optional_local' | 'disabled'

/** The container-auth modes, for validation. */
export const CONTAINER_AUTH_MODES: readonly ContainerAuthMode[] = ['required', 'optional_local', 'disabled']

/**
 * Container tokens of the newer Synth generation (`X-Synth-Container-Authorization`). Every field
 * falls back to its environment variable, read once by `createTaskApp`; the config wins.
 *
 * @example
 * ```ts
 * const containerAuth: ContainerAuthConfig = { trustedKeys: 'k1:BASE64_PUBLIC_KEY', mode: 'required' }
 * ```
 */
export interface ContainerAuthConfig {
  /**
   * Trusted Ed25519 public keys: `SYNTH_CONTAINER_TRUSTED_PUBKEYS` text (`kid:base64,base64,...`)
   * or an array of such strings, `KeyObject`s and `{ kid?, key }` (see `parseTrustedContainerKeys`).
   * @default SYNTH_CONTAINER_TRUSTED_PUBKEYS (unset or blank: no token check)
   */
  trustedKeys?: string | readonly TrustedContainerKeyInput[]
  /**
   * @default SYNTH_CONTAINER_AUTH_MODE, else 'required'
   */
  mode?: ContainerAuthMode
  /**
   * Expected `iss`.
   * @default SYNTH_CONTAINER_AUTH_ISSUER, else 'synth-backend'
   */
  issuer?: string
  /**
   * Expected `aud`.
   * @default 'synth-container'
   */
  audience?: string
  /**
   * Clock skew allowed on `exp`, `nbf` and `iat`, in milliseconds.
   * @default 30000
   */
  clockToleranceMs?: number
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
  /** Body size and request deadline. */
  limits?: TaskAppLimits
  /**
   * A sync `POST /rollout` still running after this many milliseconds is turned into a job: the
   * caller gets 202 with its id and a `Location`, and the rollout goes on.
   * @default undefined (never; the caller waits until the handler ends or `safety.max_time_s`)
   */
  syncTimeoutMs?: number
  /**
   * Where async rollout jobs are kept. A store you pass stays yours: `lifecycle.close()` does not
   * close it (it closes the default one).
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

function isPositiveFinite(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0
}

const BODY_LIMIT_RE = /^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i

function containerAuthProblems(value: unknown): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return ['containerAuth must be an object']
  const a = value as Record<string, unknown>
  const problems: string[] = []
  if (a.trustedKeys !== undefined && typeof a.trustedKeys !== 'string' && !Array.isArray(a.trustedKeys)) {
    problems.push('containerAuth.trustedKeys must be a string ("kid:base64,...") or an array of keys')
  }
  if (a.mode !== undefined && !(CONTAINER_AUTH_MODES as readonly unknown[]).includes(a.mode)) {
    problems.push(`containerAuth.mode must be one of ${CONTAINER_AUTH_MODES.join(', ')}`)
  }
  for (const key of ['issuer', 'audience'] as const) {
    if (a[key] !== undefined && (typeof a[key] !== 'string' || a[key].trim() === ''))
      problems.push(`containerAuth.${key} must be a non-empty string`)
  }
  const tolerance = a.clockToleranceMs
  if (
    tolerance !== undefined &&
    (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0)
  ) {
    problems.push('containerAuth.clockToleranceMs must be a finite number >= 0')
  }
  return problems
}

/** A config under validation: any object, read through the `TaskAppConfig` field names. */
type ConfigUnderCheck = Partial<TaskAppConfig> & Record<string, unknown>

/** Problems of the required strings and functions, and of the hook fields. */
function requiredAndHookProblems(c: ConfigUnderCheck): string[] {
  const problems: string[] = []
  for (const key of ['appId', 'name', 'description'] as const) {
    if (typeof c[key] !== 'string' || c[key].trim() === '') problems.push(`${key} must be a non-empty string`)
  }
  for (const key of ['provideTasksetDescription', 'provideTaskInstances', 'rollout'] as const) {
    if (typeof c[key] !== 'function') problems.push(`${key} must be a function`)
  }
  if (c.onRolloutComplete !== undefined && typeof c.onRolloutComplete !== 'function') {
    problems.push('onRolloutComplete must be a function')
  }
  for (const key of ['startupHooks', 'shutdownHooks'] as const) {
    const hooks = c[key]
    if (hooks === undefined) continue
    if (!Array.isArray(hooks) || hooks.some((h) => typeof h !== 'function')) {
      problems.push(`${key} must be an array of functions`)
    }
  }
  return problems
}

/** Problems of the auth, debug and CORS fields. */
function accessProblems(c: ConfigUnderCheck): string[] {
  const problems: string[] = []
  if (c.apiKeys !== undefined) {
    if (!Array.isArray(c.apiKeys) || c.apiKeys.some((k) => typeof k !== 'string' || k.trim() === '')) {
      problems.push('apiKeys must be an array of non-empty strings')
    }
  }
  if (c.requireApiKey !== undefined && typeof c.requireApiKey !== 'boolean')
    problems.push('requireApiKey must be a boolean')
  if (c.exposeDebugEnv !== undefined && typeof c.exposeDebugEnv !== 'boolean')
    problems.push('exposeDebugEnv must be a boolean')
  if (c.authFailureStatus !== undefined && c.authFailureStatus !== 400 && c.authFailureStatus !== 401) {
    problems.push('authFailureStatus must be 400 or 401')
  }
  if (c.containerAuth !== undefined) problems.push(...containerAuthProblems(c.containerAuth))
  if (c.containerAuth !== undefined) problems.push(...containerAuthProblems(c.containerAuth))
  if (c.corsOrigins !== undefined) {
    if (!Array.isArray(c.corsOrigins) || c.corsOrigins.some((o) => typeof o !== 'string')) {
      problems.push('corsOrigins must be an array of origin strings')
    }
  }
  return problems
}

/** Problems of `syncTimeoutMs` and `limits`. */
function timingProblems(c: ConfigUnderCheck): string[] {
  const problems: string[] = []
  if (c.syncTimeoutMs !== undefined && !isPositiveFinite(c.syncTimeoutMs)) {
    problems.push('syncTimeoutMs must be a positive number of milliseconds')
  }
  if (c.limits !== undefined) {
    const { bodyLimit, requestTimeoutMs } = c.limits
    if (
      bodyLimit !== undefined &&
      !(
        isPositiveFinite(bodyLimit) ||
        (typeof bodyLimit === 'string' && BODY_LIMIT_RE.test(bodyLimit.trim()))
      )
    ) {
      problems.push("limits.bodyLimit must be a positive number of bytes or a size like '10mb'")
    }
    if (requestTimeoutMs !== undefined && !isPositiveFinite(requestTimeoutMs)) {
      problems.push('limits.requestTimeoutMs must be a positive number of milliseconds')
    }
  }
  return problems
}

/** Problems of the pluggable parts: schemas, job store and logger. */
function pluginProblems(c: ConfigUnderCheck): string[] {
  const problems: string[] = []
  for (const key of ['envConfigSchema', 'policyConfigSchema'] as const) {
    const schema = c[key] as { safeParse?: unknown } | undefined
    if (schema !== undefined && typeof schema?.safeParse !== 'function')
      problems.push(`${key} must be a zod schema`)
  }
  if (c.jobStore !== undefined) {
    const store = c.jobStore as Partial<JobStore>
    if (typeof store?.get !== 'function' || typeof store.put !== 'function') {
      problems.push('jobStore must have get(id) and put(job) methods')
    }
  }
  if (c.logger !== undefined) {
    const logger = c.logger as Partial<TaskAppLogger>
    if (
      ['debug', 'info', 'warn', 'error'].some((l) => typeof logger?.[l as keyof TaskAppLogger] !== 'function')
    ) {
      problems.push('logger must have debug, info, warn and error methods')
    }
  }
  return problems
}

/** Problems of `proxy` and `baseTaskInfo`. */
function proxyAndTaskInfoProblems(c: ConfigUnderCheck): string[] {
  const problems: string[] = []
  if (c.proxy !== undefined) {
    const p = c.proxy
    if (typeof p !== 'object' || p === null) problems.push('proxy must be an object')
    else {
      if (p.openaiUrl !== undefined && !URL.canParse(p.openaiUrl))
        problems.push('proxy.openaiUrl must be an absolute URL')
      if (p.timeoutMs !== undefined && !isPositiveFinite(p.timeoutMs))
        problems.push('proxy.timeoutMs must be a positive number')
    }
  }
  if (c.baseTaskInfo !== undefined) {
    const parsed = taskInfoSchema.safeParse(c.baseTaskInfo)
    if (!parsed.success)
      problems.push(`baseTaskInfo is not a valid TaskInfo (${describeIssues(toIssues(parsed.error))})`)
  }
  return problems
}

/**
 * Checks a config synchronously and returns the list of problems (empty when valid).
 * @internal
 */
export function configProblems(config: unknown): string[] {
  if (typeof config !== 'object' || config === null) return ['config must be an object']
  const c = config as ConfigUnderCheck
  return [
    ...requiredAndHookProblems(c),
    ...accessProblems(c),
    ...timingProblems(c),
    ...pluginProblems(c),
    ...proxyAndTaskInfoProblems(c),
  ]
}

/** Throws `TASKAPP_ERR_INVALID_CONFIG` listing every problem at once. */
export function assertValidConfig(config: unknown): asserts config is TaskAppConfig {
  const problems = configProblems(config)
  if (problems.length > 0) {
    throw new TaskServerError(
      'TASKAPP_ERR_INVALID_CONFIG',
      `Invalid TaskAppConfig: ${problems.join('; ')}. Fix these fields and call createTaskApp again.`,
    )
  }
}
