/**
 * The routes of the local backend: job create in every generation (G3 `/api/v1|v2/offline/jobs`,
 * G2 `/api/jobs/gepa|mipro`, G1 `/api/prompt-learning/online/jobs`), status, events (SSE and
 * pages), cancel (`PATCH {state}` and `POST …/cancel`) under every job base path, the
 * interceptor, and the job pages (`/jobs`, `/jobs/{id}`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '@taskapp/core'
import { pageEvents, streamEvents } from './event-routes'
import { hasValidKey, HttpError, isObject, readJson, sendJson } from './http'
import { readCreateRequest, type Algorithm } from './job-config'
import { JobRecord } from './job-record'
import { cancelJob, failUnsupported, startJob, type RunnerDeps } from './job-runner'
import { pageRoute } from './page/page-routes'
import type { CancelReplyWire, CreateJobReplyWire } from './wire-shapes'

/** The backend's shared state. */
export interface BackendState {
  readonly jobs: Map<string, JobRecord>
  readonly deps: RunnerDeps
  readonly apiKeys?: readonly string[]
  readonly maxActiveJobs: number
  readonly logger: Logger
  /** Whether `/jobs` and `/jobs/{id}` (the job pages) are served. */
  readonly pages: boolean
  /** The event streams open now (SSE responses), for `closeEventStreams()`. */
  readonly streams: Set<ServerResponse>
}

/** Finished jobs kept for status and events; older ones are forgotten first. */
const MAX_KEPT_JOBS = 1000

const CREATE = /^\/api\/(?:v[12]\/offline\/jobs|prompt-learning\/online\/jobs|jobs\/(gepa|mipro))$/
const JOB =
  /^\/api\/(?:v[12]\/offline\/jobs|prompt-learning\/online\/jobs|policy-optimization\/online\/jobs|learning\/jobs|jobs)\/([A-Za-z0-9_-]+)(\/events|\/events\/stream|\/cancel)?$/
const INTERCEPTOR = /^\/interceptor\/([A-Za-z0-9_-]+)(?:\/([A-Za-z0-9_.-]+))?\/v1\/chat\/completions$/

/** Checks `Authorization: Bearer <key>` or `X-API-Key: <key>` against the configured keys. */
function checkAuth(req: IncomingMessage, apiKeys: readonly string[] | undefined): void {
  if (apiKeys !== undefined && !hasValidKey(req, apiKeys)) {
    throw new HttpError(
      401,
      'unauthorized',
      'Send your backend API key as Authorization: Bearer <key> or X-API-Key.',
    )
  }
}

function forgetOldJobs(jobs: Map<string, JobRecord>): void {
  for (const [id, job] of jobs) {
    if (jobs.size <= MAX_KEPT_JOBS) return
    if (job.terminal) jobs.delete(id)
  }
}

async function createJob(
  state: BackendState,
  req: IncomingMessage,
  res: ServerResponse,
  algorithm?: Algorithm,
): Promise<void> {
  const body = await readJson(req)
  const active = [...state.jobs.values()].filter((j) => !j.terminal).length
  if (active >= state.maxActiveJobs) {
    throw new HttpError(
      429,
      'usage_limit',
      `The local backend runs at most ${state.maxActiveJobs} jobs at once; wait for one to end or cancel one.`,
    )
  }
  const job = new JobRecord(readCreateRequest(body, req.headers, algorithm))
  state.jobs.set(job.id, job)
  forgetOldJobs(state.jobs)
  if (job.request.algorithm !== 'gepa') failUnsupported(job)
  else if (job.request.autoStart) startJob(job, state.deps)
  const reply: CreateJobReplyWire = {
    job_id: job.id,
    id: job.id,
    status: job.status,
    kind: job.request.kind,
    system: { id: job.systemId, name: job.request.systemName },
  }
  sendJson(res, 200, reply)
}

async function changeState(
  state: BackendState,
  req: IncomingMessage,
  res: ServerResponse,
  job: JobRecord,
): Promise<void> {
  const body = await readJson(req)
  const wanted = isObject(body) ? body.state : undefined
  const reason = isObject(body) && typeof body.reason === 'string' ? body.reason : undefined
  if (wanted === 'cancelled' || wanted === 'canceled') return cancel(res, job, reason)
  if (wanted === 'running') {
    if (job.status === 'pending') startJob(job, state.deps)
    return reply(
      res,
      job,
      job.terminal ? `The job has already ended (${job.status}).` : 'The job is running.',
    )
  }
  if (wanted === 'paused') {
    throw new HttpError(
      409,
      'unsupported',
      'The local backend cannot pause a job; cancel it instead ({"state": "cancelled"}).',
    )
  }
  throw new HttpError(400, 'invalid_request', '"state" must be "cancelled", "running" or "paused".')
}

function reply(res: ServerResponse, job: JobRecord, message: string): void {
  const body: CancelReplyWire = { job_id: job.id, status: job.status, message, attempt_id: null }
  sendJson(res, 200, body)
}

async function cancel(res: ServerResponse, job: JobRecord, reason: string | undefined): Promise<void> {
  if (job.terminal) return reply(res, job, `The job has already ended (${job.status}).`)
  await cancelJob(job, reason ?? 'Cancelled by the client.')
  reply(res, job, 'The job was cancelled; its in-flight rollouts were aborted.')
}

async function jobRoute(
  state: BackendState,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  m: RegExpExecArray,
): Promise<void> {
  const job = state.jobs.get(m[1] as string)
  if (job === undefined) throw new HttpError(404, 'not_found', `No job "${m[1]}" on this backend.`)
  const sub = m[2]
  if (req.method === 'GET' && sub === undefined) return sendJson(res, 200, job.statusBody())
  if (req.method === 'GET' && sub === '/events') return pageEvents(req, res, url, job)
  if (req.method === 'GET' && sub === '/events/stream')
    return streamEvents(req, res, url, job, { open: state.streams })
  if (req.method === 'PATCH' && sub === undefined) return changeState(state, req, res, job)
  if (req.method === 'POST' && sub === '/cancel') {
    const body = await readJson(req)
    return cancel(res, job, isObject(body) && typeof body.reason === 'string' ? body.reason : undefined)
  }
  throw new HttpError(405, 'method_not_allowed', `${req.method ?? ''} is not allowed on ${url.pathname}.`)
}

/** Routes one request; throws {@link HttpError} (or a `JobsError` for a bad job config). */
export async function route(state: BackendState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://backend')
  const path = url.pathname.replace(/\/+$/, '') || '/'
  const intercepted = INTERCEPTOR.exec(path)
  if (intercepted !== null && req.method === 'POST') {
    return state.deps.interceptor.handle(req, res, intercepted[1] as string, intercepted[2])
  }
  if (req.method === 'GET' && (path === '/health' || path === '/api/health')) {
    return sendJson(res, 200, { status: 'ok', service: 'taskapp-local-backend' })
  }
  if (state.pages && (path === '/jobs' || path.startsWith('/jobs/')))
    return pageRoute(state, req, res, url, path)
  if (!path.startsWith('/api/'))
    throw new HttpError(404, 'not_found', `No route ${req.method ?? ''} ${path}.`)
  checkAuth(req, state.apiKeys)
  const create = CREATE.exec(path)
  if (create !== null && req.method === 'POST')
    return createJob(state, req, res, create[1] as Algorithm | undefined)
  const job = JOB.exec(path)
  if (job !== null) return jobRoute(state, req, res, url, job)
  throw new HttpError(404, 'not_found', `No route ${req.method ?? ''} ${path}.`)
}
