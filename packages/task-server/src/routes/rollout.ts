/**
 * `POST /rollout`: validates the request, then runs it sync (200 with the RolloutResponse) or as a
 * job (202, see `./rollouts`). A sync run that outlives `syncTimeoutMs` goes on as a job.
 */
import type { Request, RequestHandler, Response, Router } from 'express'
import { z } from 'zod'
import { deferred } from '../async-utils'
import type { RolloutRequest, TaskAppConfig } from '../config'
import { sendError } from '../http-errors'
import type { TaskAppLogger } from '../logger'
import { requestIdOf } from '../middleware/request-id'
import { ownerOf } from '../owner'
import { CLIENT_GONE, finalStateOf, type Outcome } from '../rollout/outcome'
import type { RolloutExecutor } from '../rollout/execute'
import type { Jobs } from '../rollout/jobs'
import { abortRun, type Run, type RunRegistry } from '../rollout/run'
import {
  applyRequestDefaults,
  describeIssues,
  rolloutEnvSchema,
  rolloutPolicySchema,
  rolloutRequestSchema,
  toIssues,
} from '../schemas'
import { sendStoreFailure } from './job-store-errors'
import { routerOf } from './route-table'

/** What the rollout route needs. */
export interface RolloutRouteOptions {
  config: TaskAppConfig
  logger: TaskAppLogger
  runs: RunRegistry
  jobs: Jobs
  execute: RolloutExecutor
  /** `limits.maxRolloutTimeS`: the largest `safety.max_time_s` a request gets; larger ones are clamped. */
  maxRolloutTimeS: number
  /** `limits.maxJobsPerOwner`, for the 429 message. */
  maxJobsPerOwner: number
  /** What runs before the handler: auth, readiness, JSON body. */
  gates: RequestHandler[]
}

/** The rollout route: its router, and its handler chain (gates + handler) for the fast path. */
export interface RolloutRoute {
  readonly router: Router
  readonly handlers: readonly RequestHandler[]
}

const PREFER_ASYNC = /(^|[\s,;])respond-async([\s,;]|$)/i

function withDefault(schema: z.ZodType): z.ZodType {
  return z.preprocess((v) => v ?? {}, schema)
}

/** The request schema, with `envConfigSchema` / `policyConfigSchema` in place of the free-form configs. */
function requestSchemaFor(cfg: TaskAppConfig): z.ZodType {
  if (!cfg.envConfigSchema && !cfg.policyConfigSchema) return rolloutRequestSchema
  return rolloutRequestSchema.extend({
    env: cfg.envConfigSchema
      ? rolloutEnvSchema.extend({ config: withDefault(cfg.envConfigSchema) })
      : rolloutEnvSchema,
    policy: cfg.policyConfigSchema
      ? rolloutPolicySchema.extend({ config: withDefault(cfg.policyConfigSchema) })
      : rolloutPolicySchema,
  })
}

function sendOutcome(res: Response, outcome: Outcome): void {
  if (outcome.ok) {
    if (!res.headersSent) res.status(200).json(outcome.response)
    return
  }
  sendError(res, outcome.status, outcome.code, outcome.message, outcome.extra)
}

/** 202 for a rollout that goes on as a job: where to poll it, and its state now. */
function sendAccepted(
  res: Response,
  id: string,
  status: 'pending' | 'running',
  traceCorrelationId: string,
): void {
  res
    .status(202)
    .location(`/rollouts/${id}`)
    .json({ id, status, trace_correlation_id: traceCorrelationId, status_url: `/rollouts/${id}` })
}

/** 429 `job_quota_exceeded`: the caller has as many unfinished jobs as `limits.maxJobsPerOwner` allows. */
function sendQuotaExceeded(res: Response, limit: number): void {
  res.setHeader('Retry-After', '5')
  sendError(
    res,
    429,
    'job_quota_exceeded',
    `This caller already has ${limit} unfinished rollout jobs (limits.maxJobsPerOwner); wait for one to finish or cancel one with DELETE /rollouts/:id.`,
    { limit },
  )
}

/** Sends the sync answer and makes the run final. */
function answer(o: RolloutRouteOptions, res: Response, run: Run, outcome: Outcome): void {
  try {
    sendOutcome(res, outcome)
  } finally {
    // Even if the answer cannot be written, the run is over: close() must not wait for it.
    o.runs.finish(run, finalStateOf(outcome))
  }
}

/**
 * Waits for a sync run whose handler went async. The caller leaving aborts it; past
 * `syncTimeoutMs` it is detached into a job under its own id and the caller gets a 202.
 */
async function awaitSync(
  o: RolloutRouteOptions,
  res: Response,
  request: RolloutRequest,
  run: Run,
  outcome: Promise<Outcome>,
): Promise<void> {
  const createdAt = Date.now()
  const syncTimeoutMs = o.config.syncTimeoutMs
  const onClose = () => {
    if (run.state === 'running' && !res.writableFinished) abortRun(run, CLIENT_GONE)
  }
  res.on('close', onClose)
  // The caller may already have gone while the body was read or the handler started.
  if (res.socket === null || res.socket.destroyed) onClose()
  try {
    if (syncTimeoutMs !== undefined) {
      const fallback = deferred<'fallback'>()
      const timer = globalThis.setTimeout(() => fallback.resolve('fallback'), syncTimeoutMs)
      timer.unref()
      const first = await Promise.race([outcome, fallback.promise])
      clearTimeout(timer)
      if (first === 'fallback') {
        const record = await o.jobs.detach(
          run,
          request.trace_correlation_id,
          createdAt,
          requestIdOf(res),
          ownerOf(res),
        )
        if (record !== undefined) {
          void outcome.then((final) => o.jobs.finish(run, record, final))
          sendAccepted(res, run.id, 'running', request.trace_correlation_id)
          return
        }
      }
    }
    answer(o, res, run, await outcome)
  } finally {
    res.off('close', onClose)
  }
}

/** A sync rollout: 200 with the response, at once when the handler answers synchronously. */
function syncRollout(o: RolloutRouteOptions, req: Request, res: Response, request: RolloutRequest) {
  const run = o.runs.create('sync')
  const result = o.execute(run, request, requestIdOf(res), req.headers)
  if (!(result instanceof Promise)) {
    answer(o, res, run, result)
    return
  }
  return awaitSync(o, res, request, run, result)
}

/** An async rollout: store the pending job, answer 202, then run it and store the outcome. */
async function asyncRollout(
  o: RolloutRouteOptions,
  req: Request,
  res: Response,
  request: RolloutRequest,
  preferred: boolean,
): Promise<void> {
  const run = o.runs.create('async')
  // The run never starts: it leaves the registry at once.
  const abandon = () => {
    o.runs.handlerDone(run)
    o.runs.finish(run, 'failed')
  }
  let pending
  try {
    pending = await o.jobs.open(run, request.trace_correlation_id, ownerOf(res))
  } catch (err) {
    abandon()
    sendStoreFailure(res, err, o.logger)
    return
  }
  if (pending === undefined) {
    abandon()
    sendQuotaExceeded(res, o.maxJobsPerOwner)
    return
  }
  if (preferred) res.setHeader('Preference-Applied', 'respond-async')
  sendAccepted(res, run.id, 'pending', request.trace_correlation_id)
  const record = await o.jobs.start(run, pending)
  await o.jobs.finish(run, record, await o.execute(run, request, requestIdOf(res), req.headers))
}

/** Builds the `POST /rollout` route. */
export function rolloutRoute(options: RolloutRouteOptions): RolloutRoute {
  const requestSchema = requestSchemaFor(options.config)

  const handleRollout: RequestHandler = (req, res) => {
    const mode = req.url.includes('?') ? req.query.mode : undefined
    if (mode !== undefined && mode !== 'async' && mode !== 'sync') {
      const issues = [{ path: 'query.mode', message: "expected 'sync' or 'async'" }]
      sendError(res, 422, 'invalid_request', "Invalid query: query.mode: expected 'sync' or 'async'", {
        issues,
      })
      return
    }
    const parsed = requestSchema.safeParse(req.body)
    if (!parsed.success) {
      const issues = toIssues(parsed.error)
      sendError(res, 422, 'invalid_request', `Invalid rollout request: ${describeIssues(issues)}`, { issues })
      return
    }
    const request = applyRequestDefaults(parsed.data as z.output<typeof rolloutRequestSchema>)
    // Clamped, not refused: optimizers send generous budgets; the handler sees the one it gets.
    if (request.safety.max_time_s > options.maxRolloutTimeS)
      request.safety.max_time_s = options.maxRolloutTimeS
    const prefer = req.headers.prefer
    const preferAsync = prefer !== undefined && PREFER_ASYNC.test(String(prefer))
    if (mode === 'async' || (mode === undefined && preferAsync))
      return asyncRollout(options, req, res, request, preferAsync)
    return syncRollout(options, req, res, request)
  }

  const handlers = [...options.gates, handleRollout]
  return { router: routerOf((add) => add('post', '/rollout', ...handlers)), handlers }
}
