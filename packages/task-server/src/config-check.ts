/**
 * Checking a task-app config before anything starts: every problem at once, in one error.
 */
import { CONTAINER_AUTH_MODES } from './container-auth/config'
import type { TaskAppConfig, TaskAppLimits } from './config'
import { TaskServerError } from './errors'
import type { JobStore } from './job-store'
import type { TaskAppLogger } from './logger'
import { describeIssues, taskInfoSchema, toIssues } from './schemas'

function isPositiveFinite(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0
}

function isPositiveInteger(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0
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
  if (c.statsLogIntervalMs !== undefined && !isPositiveFinite(c.statsLogIntervalMs)) {
    problems.push('statsLogIntervalMs must be a positive number of milliseconds')
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
    problems.push(...callerLimitProblems(c.limits))
  }
  return problems
}

/** The longest `limits.maxRolloutTimeS`: 2^31 - 1 ms, the longest Node timer, in whole seconds. */
export const MAX_ROLLOUT_TIME_S = 2_147_483

/** Problems of the limits on what one caller may ask: rollout time, jobs, seeds. */
function callerLimitProblems(limits: TaskAppLimits): string[] {
  const problems: string[] = []
  const { maxRolloutTimeS, maxJobsPerOwner, maxTaskInfoSeeds } = limits
  if (
    maxRolloutTimeS !== undefined &&
    !(isPositiveFinite(maxRolloutTimeS) && maxRolloutTimeS <= MAX_ROLLOUT_TIME_S)
  ) {
    problems.push(
      `limits.maxRolloutTimeS must be a positive number of seconds, at most ${MAX_ROLLOUT_TIME_S}`,
    )
  }
  if (
    maxJobsPerOwner !== undefined &&
    !(isPositiveInteger(maxJobsPerOwner) || maxJobsPerOwner === Number.POSITIVE_INFINITY)
  ) {
    problems.push('limits.maxJobsPerOwner must be a positive integer (or Infinity for no quota)')
  }
  if (maxTaskInfoSeeds !== undefined && !isPositiveInteger(maxTaskInfoSeeds)) {
    problems.push('limits.maxTaskInfoSeeds must be a positive integer')
  }
  return problems
}

/** The limits with their defaults filled in. */
export interface ResolvedLimits {
  readonly maxRolloutTimeS: number
  readonly maxJobsPerOwner: number
  readonly maxTaskInfoSeeds: number
}

/** `config.limits` with the defaults of the caller limits applied (the config is valid). */
export function resolveCallerLimits(limits: TaskAppLimits | undefined): ResolvedLimits {
  return {
    maxRolloutTimeS: limits?.maxRolloutTimeS ?? 3600,
    maxJobsPerOwner: limits?.maxJobsPerOwner ?? 250,
    maxTaskInfoSeeds: limits?.maxTaskInfoSeeds ?? 1000,
  }
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
