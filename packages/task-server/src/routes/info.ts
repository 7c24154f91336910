/** `GET /info` (the base task info and rubrics) and `GET /task_info` (taskset or task instances). */
import type { Request, RequestHandler, Response, Router } from 'express'
import { raceAbort } from '../async-utils'
import type { TaskAppConfig } from '../config'
import { sendError } from '../http-errors'
import { safeLog, type TaskAppLogger } from '../logger'
import { sendInternalError } from '../middleware/errors'
import { requestIdOf } from '../middleware/request-id'
import {
  describeIssues,
  taskInfoQuerySchema,
  taskInfoSchema,
  toIssues,
  type TaskInfoOutput,
  type ValidationIssue,
} from '../schemas'
import { routerOf } from './route-table'

/** What the info routes serve and read. */
export interface InfoRoutesOptions {
  config: TaskAppConfig
  logger: TaskAppLogger
  /** auth, then readiness. */
  gates: RequestHandler[]
  /** Fires when the app closes; cancels a provider call. */
  closing: AbortSignal
  /** `limits.maxTaskInfoSeeds`: more seeds in one request get 422. */
  maxSeeds: number
}

/**
 * The `seed` and `seeds` values of the raw query, every one of them. Express's query parser keeps
 * only the first 1,000 pairs and drops the rest silently; the URL itself is bounded by Node's
 * header size limit (16 KiB by default).
 */
function seedParams(req: Request): { seed: string[]; seeds: string[] } {
  const at = req.url.indexOf('?')
  if (at === -1) return { seed: [], seeds: [] }
  const params = new URLSearchParams(req.url.slice(at + 1))
  return { seed: params.getAll('seed'), seeds: params.getAll('seeds') }
}

/** 422 when the query asks for more than `maxSeeds` seeds; true when it did. */
function refuseTooManySeeds(res: Response, count: number, maxSeeds: number): boolean {
  if (count <= maxSeeds) return false
  const message = `Too many seeds: ${count} (seed and seeds together); at most ${maxSeeds} per request (limits.maxTaskInfoSeeds). Ask in batches.`
  sendError(res, 422, 'invalid_request', message, { issues: [{ path: 'query.seed', message }] })
  return true
}

/** The base TaskInfo: `baseTaskInfo`, or one derived from `appId` and `name`. */
function baseTaskInfoOf(cfg: TaskAppConfig): TaskInfoOutput {
  return taskInfoSchema.parse(
    cfg.baseTaskInfo ?? {
      task: { id: cfg.appId, name: cfg.name },
      dataset: { id: cfg.appId },
      inference: {},
      limits: {},
    },
  )
}

/** A signal that fires on client disconnect, after `timeoutMs` or on close; call `cleanup` when done. */
function requestSignal(res: Response, timeoutMs: number, closing: AbortSignal) {
  const controller = new AbortController()
  let timedOut = false
  const timer = globalThis.setTimeout(() => {
    timedOut = true
    controller.abort(new Error(`request timed out after ${timeoutMs} ms`))
  }, timeoutMs)
  timer.unref()
  const onClose = () => {
    if (!res.writableFinished) controller.abort(new Error('client disconnected'))
  }
  res.once('close', onClose)
  const onClosing = () => controller.abort(closing.reason)
  closing.addEventListener('abort', onClosing, { once: true })
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    cleanup: () => {
      clearTimeout(timer)
      res.off('close', onClose)
      closing.removeEventListener('abort', onClosing)
    },
  }
}

/** Validates the provider's instances; the issues are prefixed with the instance index. */
function validateInstances(instances: Iterable<unknown>): { payload: unknown[]; issues: ValidationIssue[] } {
  const payload: unknown[] = []
  const issues: ValidationIssue[] = []
  let index = 0
  for (const instance of instances) {
    const parsed = taskInfoSchema.safeParse(instance)
    if (parsed.success) payload.push(parsed.data)
    else issues.push(...toIssues(parsed.error, [index]))
    index += 1
  }
  return { payload, issues }
}

/** Answers with the taskset description (no seed) or the validated instances. */
async function answerTaskInfo(
  cfg: TaskAppConfig,
  logger: TaskAppLogger,
  res: Response,
  seeds: number[],
  signal: AbortSignal,
): Promise<void> {
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
  const { payload, issues } = validateInstances(instances)
  if (issues.length > 0) {
    safeLog(
      logger,
      'error',
      { requestId: requestIdOf(res), issues },
      'task-server: invalid TaskInfo from provideTaskInstances',
    )
    const message = `provideTaskInstances returned an invalid TaskInfo: ${describeIssues(issues)}`
    sendError(res, 500, 'invalid_task_info', message, { issues })
    return
  }
  res.json(payload.length === 1 ? payload[0] : payload)
}

/** The router for `/info` and `/task_info`. */
export function infoRoutes(options: InfoRoutesOptions): Router {
  const { config: cfg, logger, gates, closing, maxSeeds } = options
  const base = baseTaskInfoOf(cfg)
  const rubrics =
    cfg.rubrics && (cfg.rubrics.outcome != null || cfg.rubrics.events != null)
      ? { outcome: cfg.rubrics.outcome ?? null, events: cfg.rubrics.events ?? null }
      : null
  const timeoutMs = cfg.limits?.requestTimeoutMs ?? 30_000

  const taskInfo: RequestHandler = async (req, res) => {
    const raw = seedParams(req)
    if (refuseTooManySeeds(res, raw.seed.length + raw.seeds.length, maxSeeds)) return
    const query = taskInfoQuerySchema.safeParse(raw)
    if (!query.success) {
      const issues = toIssues(query.error, ['query'])
      sendError(res, 422, 'invalid_request', `Invalid query: ${describeIssues(issues)}`, { issues })
      return
    }
    const { signal, timedOut, cleanup } = requestSignal(res, timeoutMs, closing)
    try {
      await answerTaskInfo(cfg, logger, res, [...query.data.seed, ...query.data.seeds], signal)
    } catch (err) {
      if (timedOut()) {
        sendError(
          res,
          504,
          'request_timeout',
          `The task info provider did not answer within ${timeoutMs} ms.`,
        )
      } else if (signal.aborted) {
        sendError(res, 503, 'shutting_down', 'The request was cancelled.')
      } else {
        sendInternalError(res, err, 'The task info provider', logger)
      }
    } finally {
      cleanup()
    }
  }

  return routerOf((add) => {
    add('get', '/info', ...gates, (_req, res) => {
      res.json({
        service: { task: base.task, version: base.task.version ?? null },
        dataset: base.dataset,
        rubrics,
        inference: base.inference,
        limits: base.limits,
      })
    })
    add('get', '/task_info', ...gates, taskInfo)
  })
}
