/**
 * `createTaskApp(config)`: the task-app HTTP service as an Express 5 app, wire-compatible with
 * synth-ai's `create_task_app(TaskAppConfig)`.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import express, {
  type ErrorRequestHandler,
  type Express,
  type Request,
  type RequestHandler,
  type Response,
} from 'express'
import { z } from 'zod'
import { deferred, raceAbort, settleWithin } from './async-utils'
import { candidateKeys, createKeySource, isAuthorized, keyPrefix } from './auth'
import {
  assertValidConfig,
  type RolloutCompleteEvent,
  type RolloutContext,
  type RolloutRequest,
  type TaskAppConfig,
} from './config'
import { createCorsMiddleware } from './cors'
import { TaskServerError } from './errors'
import { sendError, type WireErrorCode } from './http-errors'
import { createMemoryJobStore, type RolloutJob } from './job-store'
import { safeLog, silentLogger } from './logger'
import { createProxyHandler } from './proxy'
import {
  applyRequestDefaults,
  applyResponseDefaults,
  describeIssues,
  rolloutEnvSchema,
  rolloutPolicySchema,
  rolloutRequestSchema,
  rolloutResponseSchema,
  taskInfoQuerySchema,
  taskInfoSchema,
  toIssues,
  type RolloutResponseOutput,
  type ValidationIssue,
} from './schemas'

/** Where the app is in its life. */
export type TaskAppState = 'starting' | 'ready' | 'failed' | 'closing' | 'closed'

/** Start and stop of a task app, on `app.lifecycle`. */
export interface TaskAppLifecycle extends AsyncDisposable {
  /** Current state; `/health` answers 200 only in `ready`. */
  readonly state: TaskAppState
  /**
   * Resolves when every startup hook has finished; rejects with `TASKAPP_ERR_STARTUP_FAILED`
   * (the hook's error as `cause`) if one threw, or with `signal.reason`.
   */
  ready(options?: { signal?: AbortSignal }): Promise<void>
  /**
   * Stops taking requests (503 `shutting_down`), cancels running rollouts (their `AbortSignal`
   * fires), waits for them up to `graceMs`, then runs the shutdown hooks in order and closes the default
   * job store. Idempotent: every call returns the same outcome. Rejects with
   * `TASKAPP_ERR_SHUTDOWN_FAILED` if a shutdown hook threw (the others still run), or with
   * `signal.reason` (the signal also ends the grace wait early).
   */
  close(options?: { signal?: AbortSignal; graceMs?: number }): Promise<void>
}

/** The Express app `createTaskApp` returns, with its {@link TaskAppLifecycle}. */
export type TaskApp = Express & { readonly lifecycle: TaskAppLifecycle }

type Outcome =
  | { readonly ok: true; readonly response: RolloutResponseOutput; readonly durationMs: number }
  | {
      readonly ok: false
      readonly status: number
      readonly code: WireErrorCode
      readonly message: string
      readonly extra?: Record<string, unknown>
      readonly error: TaskServerError
      readonly durationMs: number
      readonly jobStatus: 'failed' | 'cancelled'
      readonly errorId?: string
    }

/**
 * One rollout in flight. Plain fields and callbacks instead of promises, so a rollout whose
 * handler answers synchronously allocates no promise at all; `whenIdle` / `whenRecorded` make
 * promises only for the rare callers that wait (close, DELETE).
 */
interface RunEntry {
  /** Key in the running map; the job id once the rollout is a job. */
  id: string
  /** Created on first use of `ctx.signal` (AbortSignals are costly to create on the hot path). */
  controller?: AbortController
  aborted: boolean
  abortReason?: unknown
  /** True when the rollout is an async job (from the start or after a sync timeout). */
  job: boolean
  /** The user's handler has returned or settled. */
  handlerDone: boolean
  /** The final job record is stored (always true for a plain sync rollout). */
  recordDone: boolean
  /** Set while the handler runs: settles the outcome at once when the run is aborted. */
  onAbort?: () => void
  /** Callers waiting for a state change. */
  waiters?: { ready: () => boolean; resolve: () => void }[]
}

/** Aborts a run: fires the handler's signal and settles its outcome without waiting for the handler. */
function abortRun(entry: RunEntry, reason: unknown): void {
  if (entry.aborted) return
  entry.aborted = true
  entry.abortReason = reason
  entry.controller?.abort(reason)
  entry.onAbort?.()
}

/** Resolves once `ready()` holds for the entry. */
function waitFor(entry: RunEntry, ready: () => boolean): Promise<void> {
  if (ready()) return Promise.resolve()
  return new Promise<void>((resolve) => {
    ;(entry.waiters ??= []).push({ ready, resolve })
  })
}

/** Wakes the waiters whose condition now holds. */
function wake(entry: RunEntry): void {
  if (entry.waiters === undefined) return
  entry.waiters = entry.waiters.filter((w) => {
    if (!w.ready()) return true
    w.resolve()
    return false
  })
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value instanceof Promise ||
    (typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function')
  )
}

/** The run's AbortSignal, created on first use (already aborted if the run was). */
function signalOf(entry: RunEntry): AbortSignal {
  if (entry.controller === undefined) {
    entry.controller = new AbortController()
    if (entry.aborted) entry.controller.abort(entry.abortReason)
  }
  return entry.controller.signal
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/
const DEFAULT_GRACE_MS = 5000
/** Marks an abort caused by the caller going away; nobody is left to answer. */
const CLIENT_GONE = Symbol('client-gone')

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function withDefault(schema: z.ZodType): z.ZodType {
  return z.preprocess((v) => v ?? {}, schema)
}

function jobView(job: RolloutJob) {
  return {
    id: job.id,
    status: job.status,
    trace_correlation_id: job.traceCorrelationId,
    created_at: new Date(job.createdAt).toISOString(),
    started_at: job.startedAt === undefined ? null : new Date(job.startedAt).toISOString(),
    finished_at: job.finishedAt === undefined ? null : new Date(job.finishedAt).toISOString(),
    duration_ms:
      job.startedAt !== undefined && job.finishedAt !== undefined ? job.finishedAt - job.startedAt : null,
    result: job.result ?? null,
    error: job.error
      ? { code: job.error.code, message: job.error.message, error_id: job.error.errorId ?? null }
      : null,
  }
}

/**
 * Builds the task-app HTTP service from a {@link TaskAppConfig}: an Express 5 app serving `/`,
 * `/health`, `/info`, `/task_info`, `/rollout` (sync and async), `/rollouts/:id`, `/done`, and
 * optionally `/debug/env` and `/proxy/v1/chat/completions`. Validates the config synchronously
 * (throws `TASKAPP_ERR_INVALID_CONFIG`) and starts the startup hooks in the background.
 *
 * @example
 * ```ts
 * import { createTaskApp } from '@taskapp/task-server'
 *
 * const app = createTaskApp({
 *   appId: 'echo',
 *   name: 'Echo',
 *   description: 'Rewards every rollout with 1',
 *   apiKeys: ['sk-env-123'],
 *   provideTasksetDescription: () => ({ splits: ['train'] }),
 *   provideTaskInstances: (seeds) => seeds.map((seed) => ({ task: { id: 'echo', name: 'Echo' }, task_metadata: { seed } })),
 *   rollout: (request) => ({ trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: 1 } }),
 * })
 * await app.lifecycle.ready()
 * const server = app.listen(8114, '127.0.0.1')
 * // later: server.close(); await app.lifecycle.close()
 * ```
 */
export function createTaskApp<TEnvConfig = Record<string, unknown>, TPolicyConfig = Record<string, unknown>>(
  config: TaskAppConfig<TEnvConfig, TPolicyConfig>,
): TaskApp {
  assertValidConfig(config)
  const cfg = config as unknown as TaskAppConfig
  const logger = cfg.logger ?? silentLogger
  const keys = createKeySource(cfg.apiKeys)
  const requireKey = cfg.requireApiKey ?? true
  const authStatus = cfg.authFailureStatus ?? 400
  const requestTimeoutMs = cfg.limits?.requestTimeoutMs ?? 30_000
  // A store passed in belongs to the caller (it may be shared); only the default one is closed here.
  const ownsJobStore = cfg.jobStore === undefined
  const jobStore = cfg.jobStore ?? createMemoryJobStore()
  const baseTaskInfo = taskInfoSchema.parse(
    cfg.baseTaskInfo ?? {
      task: { id: cfg.appId, name: cfg.name },
      dataset: { id: cfg.appId },
      inference: {},
      limits: {},
    },
  )
  const rubrics =
    cfg.rubrics && (cfg.rubrics.outcome != null || cfg.rubrics.events != null)
      ? { outcome: cfg.rubrics.outcome ?? null, events: cfg.rubrics.events ?? null }
      : null
  const requestSchema: z.ZodType =
    cfg.envConfigSchema || cfg.policyConfigSchema
      ? rolloutRequestSchema.extend({
          env: cfg.envConfigSchema
            ? rolloutEnvSchema.extend({ config: withDefault(cfg.envConfigSchema) })
            : rolloutEnvSchema,
          policy: cfg.policyConfigSchema
            ? rolloutPolicySchema.extend({ config: withDefault(cfg.policyConfigSchema) })
            : rolloutPolicySchema,
        })
      : rolloutRequestSchema

  // ---- lifecycle state -------------------------------------------------------------------
  let state: TaskAppState = 'starting'
  const lifecycleAbort = new AbortController()
  const running = new Map<string, RunEntry>()
  const pendingHooks = new Set<Promise<void>>()

  const startup: Promise<void> = (async () => {
    for (const hook of cfg.startupHooks ?? []) {
      lifecycleAbort.signal.throwIfAborted()
      await hook({ signal: lifecycleAbort.signal, logger })
    }
    if (state === 'starting') state = 'ready'
  })().catch((err: unknown) => {
    if (state === 'starting') state = 'failed'
    const wrapped = new TaskServerError(
      'TASKAPP_ERR_STARTUP_FAILED',
      `A startup hook failed (${errorMessage(err)}); fix the hook and create the app again.`,
      { cause: err },
    )
    safeLog(logger, 'error', { err }, 'task-server: a startup hook failed; /health stays 503')
    throw wrapped
  })
  startup.catch(() => {}) // reported through ready() and /health, never as an unhandled rejection

  let closing: Promise<void> | undefined

  async function doClose(graceMs: number, signal: AbortSignal | undefined): Promise<void> {
    state = 'closing'
    const reason = new TaskServerError('TASKAPP_ERR_ROLLOUT_CANCELLED', 'The task app is closing.')
    lifecycleAbort.abort(reason)
    const deadline = Date.now() + graceMs
    await settleWithin(startup, graceMs, signal)
    for (const entry of running.values()) abortRun(entry, reason)
    const waits = [...running.values()].map((e) => waitFor(e, () => e.handlerDone && e.recordDone))
    await settleWithin(Promise.all([...waits, ...pendingHooks]), deadline - Date.now(), signal)
    const errors: unknown[] = []
    const hookAbort = new AbortController()
    const onAbort = () => hookAbort.abort(signal?.reason)
    if (signal?.aborted) onAbort()
    else signal?.addEventListener('abort', onAbort, { once: true })
    try {
      for (const hook of cfg.shutdownHooks ?? []) {
        try {
          await hook({ signal: hookAbort.signal, logger })
        } catch (err) {
          errors.push(err)
          safeLog(logger, 'error', { err }, 'task-server: a shutdown hook failed')
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
    if (ownsJobStore) await jobStore.close?.()
    state = 'closed'
    if (errors.length > 0) {
      throw new TaskServerError(
        'TASKAPP_ERR_SHUTDOWN_FAILED',
        `${errors.length} shutdown step(s) failed (${errors.map(errorMessage).join('; ')}); see the cause and fix the hook.`,
        { cause: errors.length === 1 ? errors[0] : new AggregateError(errors, 'shutdown hooks failed') },
      )
    }
  }

  const lifecycle: TaskAppLifecycle = {
    get state() {
      return state
    },
    ready: (options = {}) => raceAbort(startup, options.signal),
    close: (options = {}) => {
      closing ??= doClose(options.graceMs ?? DEFAULT_GRACE_MS, options.signal)
      return raceAbort(closing, options.signal)
    },
    [Symbol.asyncDispose]: () => lifecycle.close(),
  }

  // ---- rollouts ---------------------------------------------------------------------------
  let syncSeq = 0

  /** A new run; `track` puts it in the running map at once (jobs), else execute does when it goes async. */
  function register(id: string, job: boolean, track = true): RunEntry {
    const entry: RunEntry = { id, aborted: false, job, handlerDone: false, recordDone: !job }
    if (track) running.set(id, entry)
    return entry
  }

  function report(o: Outcome, request: RolloutRequest, requestId: string): Outcome {
    if (cfg.onRolloutComplete === undefined) return o
    notify(
      o.ok
        ? { request, response: o.response, durationMs: o.durationMs, requestId }
        : { request, error: o.error, durationMs: o.durationMs, requestId },
    )
    return o
  }

  /** Drops the entry from the running map once its handler and its record are both done. */
  function update(entry: RunEntry): void {
    if (entry.handlerDone && entry.recordDone && running.get(entry.id) === entry) running.delete(entry.id)
    wake(entry)
  }

  function failure(
    status: number,
    code: WireErrorCode,
    message: string,
    error: TaskServerError,
    durationMs: number,
    jobStatus: 'failed' | 'cancelled',
    extra?: Record<string, unknown>,
    errorId?: string,
  ): Outcome {
    return { ok: false, status, code, message, error, durationMs, jobStatus, extra, errorId }
  }

  function validateResponse(
    raw: unknown,
    request: RolloutRequest,
    requestId: string,
    durationMs: number,
  ): Outcome {
    let candidate = raw
    if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
      const obj = raw as Record<string, unknown>
      if (obj.reward_info === undefined && obj.metrics !== undefined) {
        const { metrics, ...rest } = obj
        candidate = { ...rest, reward_info: metrics }
      }
    }
    const parsed = rolloutResponseSchema.safeParse(candidate)
    if (parsed.success) {
      const response = applyResponseDefaults(parsed.data)
      if (parsed.data.trace_correlation_id !== request.trace_correlation_id) {
        safeLog(
          logger,
          'warn',
          { requestId, expected: request.trace_correlation_id, got: parsed.data.trace_correlation_id },
          'task-server: the rollout response does not echo the request trace_correlation_id',
        )
      }
      return { ok: true, response, durationMs }
    }
    const issues = toIssues(parsed.error)
    const summary = describeIssues(issues)
    const error = new TaskServerError(
      'TASKAPP_ERR_INVALID_ROLLOUT_RESPONSE',
      `The rollout handler returned an invalid RolloutResponse (${summary}); return { trace_correlation_id, reward_info: { outcome_reward } }.`,
    )
    safeLog(logger, 'error', { requestId, issues }, 'task-server: invalid RolloutResponse from the handler')
    return failure(
      500,
      'invalid_rollout_response',
      `The rollout handler returned an invalid RolloutResponse: ${summary}`,
      error,
      durationMs,
      'failed',
      { issues },
    )
  }

  function classifyError(
    err: unknown,
    entry: RunEntry,
    requestId: string,
    request: RolloutRequest,
    durationMs: number,
  ): Outcome {
    if (entry.aborted) {
      const reason: unknown = entry.abortReason
      if (reason instanceof TaskServerError && reason.code === 'TASKAPP_ERR_ROLLOUT_TIMEOUT') {
        return failure(504, 'rollout_timeout', reason.message, reason, durationMs, 'failed')
      }
      const cancelled =
        reason instanceof TaskServerError
          ? reason
          : new TaskServerError(
              'TASKAPP_ERR_ROLLOUT_CANCELLED',
              'The caller went away before the rollout finished.',
              {
                cause: reason === CLIENT_GONE ? undefined : reason,
              },
            )
      return failure(503, 'rollout_cancelled', cancelled.message, cancelled, durationMs, 'cancelled')
    }
    const errorId = randomUUID()
    const error = new TaskServerError(
      'TASKAPP_ERR_ROLLOUT_FAILED',
      `The rollout handler threw (${errorMessage(err)}); error id ${errorId}.`,
      { cause: err },
    )
    safeLog(
      logger,
      'error',
      { err, errorId, requestId, trace_correlation_id: request.trace_correlation_id },
      'task-server: the rollout handler threw',
    )
    return failure(
      500,
      'rollout_failed',
      `The rollout handler failed; look up error id ${errorId} in the server log.`,
      error,
      durationMs,
      'failed',
      { error_id: errorId },
      errorId,
    )
  }

  function notify(event: RolloutCompleteEvent): void {
    const hook = cfg.onRolloutComplete
    if (hook === undefined) return
    const p: Promise<void> = Promise.resolve()
      .then(() => hook(event))
      .catch((err: unknown) => {
        safeLog(
          logger,
          'warn',
          { err, requestId: event.requestId },
          'task-server: onRolloutComplete failed (ignored)',
        )
      })
      .finally(() => pendingHooks.delete(p))
    pendingHooks.add(p)
  }

  /**
   * Runs the user's handler for `entry`. Returns the outcome directly when the handler answers
   * synchronously (no promise, no timer), else a promise of it (never rejects).
   */
  function execute(
    entry: RunEntry,
    request: RolloutRequest,
    requestId: string,
    mode: 'sync' | 'async',
    headers: IncomingHttpHeaders,
  ): Outcome | Promise<Outcome> {
    const started = performance.now()
    if (entry.aborted) {
      entry.handlerDone = true
      update(entry)
      return report(classifyError(entry.abortReason, entry, requestId, request, 0), request, requestId)
    }
    const ctx: RolloutContext = {
      get signal() {
        return signalOf(entry)
      },
      requestId,
      logger,
      mode,
      headers,
    }
    let result: unknown
    try {
      result = cfg.rollout(request, ctx)
    } catch (err) {
      entry.handlerDone = true
      update(entry)
      return report(
        classifyError(err, entry, requestId, request, performance.now() - started),
        request,
        requestId,
      )
    }
    if (!isThenable(result)) {
      // Answered synchronously: nothing can have interleaved, no timer or promise is needed.
      entry.handlerDone = true
      update(entry)
      return report(
        validateResponse(result, request, requestId, performance.now() - started),
        request,
        requestId,
      )
    }
    // From here on the run is in flight: close() and DELETE must be able to find it.
    if (running.get(entry.id) !== entry) running.set(entry.id, entry)
    const classify = (err: unknown) =>
      classifyError(err, entry, requestId, request, performance.now() - started)
    const handlerSettled = () => {
      entry.handlerDone = true
      update(entry)
    }
    const maxTime = request.safety.max_time_s
    const timer = globalThis.setTimeout(() => {
      abortRun(
        entry,
        new TaskServerError(
          'TASKAPP_ERR_ROLLOUT_TIMEOUT',
          `The rollout ran longer than safety.max_time_s (${maxTime} s) and was aborted.`,
        ),
      )
    }, maxTime * 1000)
    timer.unref()
    return new Promise<Outcome>((resolve) => {
      let finished = false
      // No listener on the signal (EventTarget listeners are slow on the hot path): every abort
      // goes through abortRun, which calls onAbort and settles the outcome at once.
      const finish = (o: Outcome) => {
        if (finished) return
        finished = true
        entry.onAbort = undefined
        clearTimeout(timer)
        resolve(report(o, request, requestId))
      }
      entry.onAbort = () => finish(classify(entry.abortReason))
      result.then(
        (raw) => {
          handlerSettled()
          if (entry.aborted) finish(classify(entry.abortReason))
          else finish(validateResponse(raw, request, requestId, performance.now() - started))
        },
        (err: unknown) => {
          handlerSettled()
          finish(classify(err))
        },
      )
    })
  }

  async function storeFinal(entry: RunEntry, base: RolloutJob, outcome: Outcome): Promise<void> {
    const finishedAt = Date.now()
    const record: RolloutJob = outcome.ok
      ? { ...base, status: 'succeeded', finishedAt, result: outcome.response }
      : {
          ...base,
          status: outcome.jobStatus,
          finishedAt,
          error: { code: outcome.code, message: outcome.message, errorId: outcome.errorId },
        }
    try {
      await jobStore.put(record)
    } catch (err) {
      safeLog(logger, 'error', { err, jobId: entry.id }, 'task-server: could not store the final job record')
    } finally {
      entry.recordDone = true
      update(entry)
    }
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
      .json({
        id,
        status,
        trace_correlation_id: traceCorrelationId,
        status_url: `/rollouts/${id}`,
      })
  }

  function requestIdOf(res: Response): string {
    return res.locals.requestId as string
  }

  function syncRollout(req: Request, res: Response, request: RolloutRequest): void | Promise<void> {
    const requestId = requestIdOf(res)
    const entry = register(`sync-${++syncSeq}`, false, false)
    const result = execute(entry, request, requestId, 'sync', req.headers)
    if (!(result instanceof Promise)) {
      sendOutcome(res, result)
      return
    }
    return awaitSyncRollout(res, request, entry, result, Date.now())
  }

  async function awaitSyncRollout(
    res: Response,
    request: RolloutRequest,
    entry: RunEntry,
    outcome: Promise<Outcome>,
    createdAt: number,
  ): Promise<void> {
    let detached = false
    const onClose = () => {
      if (!detached && !res.writableFinished) abortRun(entry, CLIENT_GONE)
    }
    res.on('close', onClose)
    // The caller may already have gone while the body was read or the handler started.
    if (res.socket === null || res.socket.destroyed) onClose()
    try {
      const syncTimeoutMs = cfg.syncTimeoutMs
      if (syncTimeoutMs !== undefined) {
        const fallback = deferred<'fallback'>()
        const timer = globalThis.setTimeout(() => fallback.resolve('fallback'), syncTimeoutMs)
        timer.unref()
        const first = await Promise.race([outcome, fallback.promise])
        clearTimeout(timer)
        if (first === 'fallback') {
          // Becomes a job: a random id (sync ids are a counter), and the record must be stored
          // before the entry may leave the running map.
          running.delete(entry.id)
          entry.id = randomUUID()
          running.set(entry.id, entry)
          entry.job = true
          entry.recordDone = false
          const base: RolloutJob = {
            id: entry.id,
            status: 'running',
            traceCorrelationId: request.trace_correlation_id,
            createdAt,
            startedAt: createdAt,
          }
          try {
            await jobStore.put(base)
          } catch (err) {
            safeLog(
              logger,
              'warn',
              { err, requestId: requestIdOf(res) },
              'task-server: job store refused the sync-timeout job; still waiting',
            )
            entry.job = false
            entry.recordDone = true
            update(entry)
            sendOutcome(res, await outcome)
            return
          }
          detached = true
          void outcome.then((o) => storeFinal(entry, base, o))
          sendAccepted(res, entry.id, 'running', request.trace_correlation_id)
          return
        }
      }
      sendOutcome(res, await outcome)
    } finally {
      res.off('close', onClose)
    }
  }

  const asyncRollout = async (req: Request, res: Response, request: RolloutRequest, preferred: boolean) => {
    const requestId = requestIdOf(res)
    const entry = register(randomUUID(), true)
    const base: RolloutJob = {
      id: entry.id,
      status: 'pending',
      traceCorrelationId: request.trace_correlation_id,
      createdAt: Date.now(),
    }
    try {
      await jobStore.put(base)
    } catch (err) {
      entry.handlerDone = true
      entry.recordDone = true
      update(entry)
      if (err instanceof TaskServerError && err.code === 'TASKAPP_ERR_JOB_STORE_FULL') {
        res.setHeader('Retry-After', '5')
        sendError(res, 503, 'job_store_full', 'Too many rollout jobs are running; retry later.')
      } else {
        const errorId = randomUUID()
        safeLog(logger, 'error', { err, errorId, requestId }, 'task-server: the job store failed')
        sendError(
          res,
          500,
          'internal_error',
          `The job store failed; look up error id ${errorId} in the server log.`,
          {
            error_id: errorId,
          },
        )
      }
      return
    }
    if (preferred) res.setHeader('Preference-Applied', 'respond-async')
    sendAccepted(res, entry.id, 'pending', request.trace_correlation_id)
    const startedAt = Date.now()
    const runningRecord: RolloutJob = { ...base, status: 'running', startedAt }
    if (!entry.aborted) {
      try {
        await jobStore.put(runningRecord)
      } catch (err) {
        safeLog(
          logger,
          'warn',
          { err, jobId: entry.id },
          'task-server: could not store the running job record',
        )
      }
    }
    const outcome = await execute(entry, request, requestId, 'async', req.headers)
    await storeFinal(entry, runningRecord, outcome)
  }

  // ---- middleware and routes ------------------------------------------------------------
  const app = express() as unknown as TaskApp
  app.disable('x-powered-by')
  app.set('etag', false)
  Object.defineProperty(app, 'lifecycle', { value: lifecycle, enumerable: true })

  const jsonParser = express.json({ limit: cfg.limits?.bodyLimit ?? '10mb', type: () => true, strict: true })

  /** Sets the request id and refuses work while closing; true when the request may go on. */
  function prelude(req: Request, res: Response): boolean {
    const given = req.headers['x-request-id']
    const requestId = typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID()
    res.locals.requestId = requestId
    res.setHeader('X-Request-Id', requestId)
    if ((state === 'closing' || state === 'closed') && req.path !== '/health' && req.path !== '/') {
      res.setHeader('Connection', 'close')
      sendError(res, 503, 'shutting_down', 'The task app is shutting down; retry against a new instance.')
      return false
    }
    return true
  }

  if (cfg.corsOrigins !== undefined) app.use(createCorsMiddleware(cfg.corsOrigins))

  // The hot path: one layer instead of five (prelude, auth, ready, JSON, handler), matched first.
  app.post('/rollout', (req, res, next) => {
    if (!prelude(req, res) || !authorized(req, res) || !isReady(res)) return
    jsonParser(req, res, (err?: unknown) => {
      if (err) next(err)
      else {
        try {
          const pending = handleRollout(req, res)
          if (pending !== undefined) pending.catch(next)
        } catch (e) {
          next(e)
        }
      }
    })
  })

  app.use((req, res, next) => {
    if (prelude(req, res)) next()
  })

  /** True when the request may go on; otherwise the error answer has been sent. */
  function authorized(req: Request, res: Response): boolean {
    if (!requireKey) return true
    const allowed = keys.current()
    if (allowed.keys.length === 0) {
      sendError(
        res,
        503,
        'missing_environment_api_key',
        'No API key is configured on the server; set ENVIRONMENT_API_KEY (or pass apiKeys) and restart the task app.',
      )
      return false
    }
    const candidates = candidateKeys(req.headers)
    if (isAuthorized(candidates, allowed)) return true
    safeLog(
      logger,
      'warn',
      {
        requestId: requestIdOf(res),
        path: req.path,
        presented: candidates.length,
        lengths: candidates.map((c) => c.length),
      },
      'task-server: request rejected: API key missing or wrong',
    )
    if (authStatus === 401) res.setHeader('WWW-Authenticate', 'Bearer')
    sendError(
      res,
      authStatus,
      'unauthorised',
      candidates.length === 0
        ? 'API key missing: send it in X-API-Key, X-API-Keys or Authorization: Bearer.'
        : 'API key not accepted: send one of the ENVIRONMENT_API_KEY keys in X-API-Key, X-API-Keys or Authorization: Bearer.',
    )
    return false
  }

  const auth: RequestHandler = (req, res, next) => {
    if (authorized(req, res)) next()
  }

  /** True once the startup hooks are done; otherwise a 503 has been sent. */
  function isReady(res: Response): boolean {
    if (state === 'ready') return true
    res.setHeader('Retry-After', '1')
    if (state === 'failed')
      sendError(res, 503, 'startup_failed', 'A startup hook failed; see the server log.')
    else sendError(res, 503, 'not_ready', 'The task app is still starting; retry in a moment.')
    return false
  }

  const readyGate: RequestHandler = (_req, res, next) => {
    if (isReady(res)) next()
  }

  const methodNotAllowed =
    (allow: string): RequestHandler =>
    (_req, res) => {
      res.setHeader('Allow', allow)
      sendError(res, 405, 'method_not_allowed', `Use ${allow} on this path.`)
    }

  /** A signal that fires on client disconnect or after `requestTimeoutMs`; call `cleanup` when done. */
  function routeSignal(res: Response): { signal: AbortSignal; timedOut: () => boolean; cleanup: () => void } {
    const controller = new AbortController()
    let timedOut = false
    const timer = globalThis.setTimeout(() => {
      timedOut = true
      controller.abort(new Error(`request timed out after ${requestTimeoutMs} ms`))
    }, requestTimeoutMs)
    timer.unref()
    const onClose = () => {
      if (!res.writableFinished) controller.abort(new Error('client disconnected'))
    }
    res.once('close', onClose)
    const onLifecycleAbort = () => controller.abort(lifecycleAbort.signal.reason)
    lifecycleAbort.signal.addEventListener('abort', onLifecycleAbort, { once: true })
    return {
      signal: controller.signal,
      timedOut: () => timedOut,
      cleanup: () => {
        clearTimeout(timer)
        res.off('close', onClose)
        lifecycleAbort.signal.removeEventListener('abort', onLifecycleAbort)
      },
    }
  }

  function internalError(res: Response, err: unknown, what: string): void {
    const errorId = randomUUID()
    safeLog(logger, 'error', { err, errorId, requestId: requestIdOf(res) }, `task-server: ${what} threw`)
    sendError(res, 500, 'internal_error', `${what} failed; look up error id ${errorId} in the server log.`, {
      error_id: errorId,
    })
  }

  app.head('/', (_req, res) => {
    res.status(200).json({ status: 'ok' })
  })
  app.get('/', (_req, res) => {
    res.json({ status: 'ok', service: cfg.appId })
  })

  app.get('/health', auth, (_req, res) => {
    const allowed = keys.current()
    const authInfo = { required: requireKey, expected_prefix: keyPrefix(allowed.keys[0]) }
    if (state === 'ready') {
      res.json({ healthy: true, auth: authInfo })
      return
    }
    const status = state === 'starting' ? 'starting' : state === 'failed' ? 'startup_failed' : 'shutting_down'
    res.status(503).json({ healthy: false, status, auth: authInfo })
  })

  app.post('/done', auth, (_req, res) => {
    res.json({ ok: true, service: cfg.appId })
  })

  app.get('/info', auth, readyGate, (_req, res) => {
    res.json({
      service: { task: baseTaskInfo.task, version: baseTaskInfo.task.version ?? null },
      dataset: baseTaskInfo.dataset,
      rubrics,
      inference: baseTaskInfo.inference,
      limits: baseTaskInfo.limits,
    })
  })

  app.get('/task_info', auth, readyGate, async (req, res) => {
    const query = taskInfoQuerySchema.safeParse(req.query)
    if (!query.success) {
      const issues = toIssues(query.error, ['query'])
      sendError(res, 422, 'invalid_request', `Invalid query: ${describeIssues(issues)}`, { issues })
      return
    }
    const seeds = [...query.data.seed, ...query.data.seeds]
    const { signal, timedOut, cleanup } = routeSignal(res)
    try {
      if (seeds.length === 0) {
        const taskset = await raceAbort(
          Promise.resolve().then(() => cfg.provideTasksetDescription({ signal })),
          signal,
        )
        res.json({ taskset: taskset ?? null })
        return
      }
      const instances = await raceAbort(
        Promise.resolve().then(() => cfg.provideTaskInstances(seeds, { signal })),
        signal,
      )
      const payload: unknown[] = []
      const issues: ValidationIssue[] = []
      let index = 0
      for (const instance of instances) {
        const parsed = taskInfoSchema.safeParse(instance)
        if (parsed.success) payload.push(parsed.data)
        else issues.push(...toIssues(parsed.error, [index]))
        index += 1
      }
      if (issues.length > 0) {
        safeLog(
          logger,
          'error',
          { requestId: requestIdOf(res), issues },
          'task-server: invalid TaskInfo from provideTaskInstances',
        )
        sendError(
          res,
          500,
          'invalid_task_info',
          `provideTaskInstances returned an invalid TaskInfo: ${describeIssues(issues)}`,
          {
            issues,
          },
        )
        return
      }
      res.json(payload.length === 1 ? payload[0] : payload)
    } catch (err) {
      if (timedOut()) {
        sendError(
          res,
          504,
          'request_timeout',
          `The task info provider did not answer within ${requestTimeoutMs} ms.`,
        )
      } else if (signal.aborted) {
        sendError(res, 503, 'shutting_down', 'The request was cancelled.')
      } else {
        internalError(res, err, 'The task info provider')
      }
    } finally {
      cleanup()
    }
  })

  function handleRollout(req: Request, res: Response): void | Promise<void> {
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
      sendError(res, 422, 'invalid_request', `Invalid rollout request: ${describeIssues(issues)}`, {
        issues,
      })
      return
    }
    const request = applyRequestDefaults(parsed.data as z.output<typeof rolloutRequestSchema>)
    const prefer = req.headers.prefer
    const preferAsync = prefer !== undefined && /(^|[\s,;])respond-async([\s,;]|$)/i.test(String(prefer))
    if (mode === 'async' || (mode === undefined && preferAsync))
      return asyncRollout(req, res, request, preferAsync)
    return syncRollout(req, res, request)
  }

  app.get('/rollouts/:id', auth, async (req, res) => {
    const job = await jobStore.get(req.params.id as string)
    if (job === undefined) {
      sendError(
        res,
        404,
        'job_not_found',
        `No rollout job ${req.params.id as string}; it never existed or was evicted.`,
      )
      return
    }
    res.json(jobView(job))
  })

  app.delete('/rollouts/:id', auth, async (req, res) => {
    const id = req.params.id as string
    const entry = running.get(id)
    if (entry?.job) {
      abortRun(
        entry,
        new TaskServerError(
          'TASKAPP_ERR_ROLLOUT_CANCELLED',
          `Rollout job ${id} was cancelled by the caller.`,
        ),
      )
      await waitFor(entry, () => entry.recordDone)
    }
    const job = await jobStore.get(id)
    if (job === undefined) {
      sendError(res, 404, 'job_not_found', `No rollout job ${id}; it never existed or was evicted.`)
      return
    }
    if (entry?.job) {
      res.json(jobView(job))
      return
    }
    sendError(
      res,
      409,
      'job_already_finished',
      `Rollout job ${id} already ended (${job.status}); nothing to cancel.`,
      {
        status: job.status,
      },
    )
  })

  if (cfg.exposeDebugEnv === true) {
    const mask = (value: string | undefined) =>
      !value ? '' : value.length > 6 ? `${value.slice(0, 6)}…` : value
    app.get('/debug/env', auth, (_req, res) => {
      res.json({
        has_ENVIRONMENT_API_KEY: Boolean(process.env.ENVIRONMENT_API_KEY),
        OPENAI_API_KEY_prefix: mask(process.env.OPENAI_API_KEY),
        GROQ_API_KEY_prefix: mask(process.env.GROQ_API_KEY),
      })
    })
  }

  if (cfg.proxy !== undefined && cfg.proxy.enableOpenai !== false) {
    app.post('/proxy/v1/chat/completions', auth, readyGate, jsonParser, createProxyHandler(cfg.proxy, logger))
    app.all('/proxy/v1/chat/completions', methodNotAllowed('POST'))
  }

  app.all('/health', methodNotAllowed('GET, HEAD'))
  app.all('/info', methodNotAllowed('GET, HEAD'))
  app.all('/task_info', methodNotAllowed('GET, HEAD'))
  app.all('/rollout', methodNotAllowed('POST'))
  app.all('/done', methodNotAllowed('POST'))
  app.all('/rollouts/:id', methodNotAllowed('GET, HEAD, DELETE'))

  app.use((req, res) => {
    sendError(
      res,
      404,
      'not_found',
      `No route ${req.method} ${req.path}; see the task-app contract for the routes.`,
    )
  })

  const onError: ErrorRequestHandler = (err: unknown, _req, res, _next) => {
    const e = err as { type?: unknown; status?: unknown; limit?: unknown }
    switch (e?.type) {
      case 'entity.too.large':
        sendError(
          res,
          413,
          'payload_too_large',
          `The request body is larger than the ${String(e.limit)}-byte limit; send a smaller body or raise limits.bodyLimit.`,
          { limit: e.limit },
        )
        return
      case 'entity.parse.failed':
        sendError(res, 422, 'invalid_json', 'The request body is not valid JSON.', {
          issues: [{ path: '', message: 'invalid JSON' }],
        })
        return
      case 'encoding.unsupported':
      case 'charset.unsupported':
        sendError(
          res,
          415,
          'unsupported_encoding',
          'Send the body as UTF-8 JSON, optionally gzip or deflate encoded.',
        )
        return
      case 'request.aborted':
        return
      default:
        if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
          sendError(res, e.status, 'invalid_request', 'The request could not be read.')
          return
        }
        internalError(res, err, 'The request handler')
    }
  }
  app.use(onError)

  return app
}
