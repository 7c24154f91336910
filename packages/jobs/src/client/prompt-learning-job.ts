/**
 * `PromptLearningJob`: synth-ai's `PromptLearningJob` for TypeScript. Build it from a TOML file or a
 * config object, submit it, follow its events, wait for it, cancel it, read its result.
 */
import { Agent, type Dispatcher } from 'undici'
import { JobsError, JobsErrorCode } from '../errors'
import { WIRE_ROUTES, offlineCreateBody, type OfflineCreateBody, type WireGeneration } from '../wire'
import { buildJobPlan, readTomlConfig, type JobPlan } from './config'
import { EventCursor } from './event-cursor'
import { jobEvents, pageAll, type EventSourceContext } from './events'
import { checkReply, protocolError, send, type HttpContext, type SendInput } from './http'
import { resolveOptions, type ResolvedOptions } from './options'
import { ResultAccumulator, snapshotOf } from './result'
import type {
  EventsOptions,
  JobEvent,
  JobResult,
  JobSnapshot,
  PromptLearningJobOptions,
  SubmittedJob,
  WaitOptions,
} from './types'
import { createJob } from './submit'
import { waitForJob } from './wait'

/**
 * A Synth prompt-optimization job (GEPA or MIPRO). Speaks the newest job API (`/api/v1/offline/jobs`)
 * and falls back to the older create routes only when the newest answers 404 or 405. Owns an undici
 * `Agent` unless given a `dispatcher`: `close()` it, or use `await using`.
 *
 * @example
 * ```ts
 * import { PromptLearningJob } from '@taskapp/jobs'
 *
 * await using job = await PromptLearningJob.fromConfig({
 *   configPath: 'gepa.toml', // apiKey from SYNTH_API_KEY, backend from SYNTH_BACKEND_URL
 *   overrides: { task_url: 'http://127.0.0.1:8114', 'prompt_learning.gepa.rollout.budget': 8 },
 * })
 * console.log('job', await job.submit())
 * const result = await job.waitUntilComplete({ timeoutMs: 30 * 60_000, onEvent: (e) => console.log(e.type) })
 * console.log(result.bestScore, result.bestPrompt)
 * ```
 */
export class PromptLearningJob implements AsyncDisposable {
  readonly #options: ResolvedOptions
  readonly #plan: JobPlan
  readonly #http: HttpContext
  readonly #ownAgent: Agent | undefined
  readonly #results = new ResultAccumulator()
  #submitting: Promise<SubmittedJob> | undefined
  #submitted: SubmittedJob | undefined

  private constructor(options: ResolvedOptions, plan: JobPlan) {
    this.#options = options
    this.#plan = plan
    this.#ownAgent = options.dispatcher === undefined ? new Agent({ keepAliveTimeout: 4_000 }) : undefined
    const dispatcher: Dispatcher = options.dispatcher ?? (this.#ownAgent as Agent)
    this.#http = {
      root: options.root,
      apiKey: options.apiKey,
      dispatcher,
      requestTimeoutMs: options.requestTimeoutMs,
      streamIdleTimeoutMs: options.streamIdleTimeoutMs,
    }
  }

  /**
   * Reads the config (`configPath`, TOML, or `config`), merges `overrides`, checks it and resolves
   * the backend and key. Sends nothing. Throws `TASKAPP_ERR_JOBS_INVALID_CONFIG` naming each bad field.
   */
  static async fromConfig(options: PromptLearningJobOptions): Promise<PromptLearningJob> {
    const resolved = resolveOptions(options)
    const raw =
      options.configPath !== undefined
        ? await readTomlConfig(options.configPath, options.signal)
        : options.config
    const plan = buildJobPlan({
      raw,
      overrides: options.overrides,
      apiBase: `${resolved.root}/api`,
      workerToken: resolved.workerToken,
      source:
        options.configPath !== undefined ? `configPath ${JSON.stringify(options.configPath)}` : 'config',
    })
    return new PromptLearningJob(resolved, plan)
  }

  /** The job id once `submit()` resolved. */
  get jobId(): string | undefined {
    return this.#submitted?.jobId
  }

  /** The wire generation the job was created with (`g3` newest), once submitted. */
  get generation(): WireGeneration | undefined {
    return this.#submitted?.generation
  }

  /** The backend root requests go to (`${backendUrl}/api/...`). */
  get backendUrl(): string {
    return this.#options.root
  }

  /** The task app URL sent as `prompt_learning.container_url`. */
  get containerUrl(): string | undefined {
    return this.#plan.containerUrl
  }

  /** The G3 create body `submit()` sends (a copy; the worker token is a header, never in it). */
  get createBody(): OfflineCreateBody {
    return structuredClone(offlineCreateBody(this.#plan))
  }

  /**
   * Creates the job on the backend and resolves with its id. Calling it again returns the same
   * promise: a job is created once.
   */
  submit(options: { signal?: AbortSignal } = {}): Promise<string> {
    if (this.#submitting === undefined) {
      const submitting = createJob(this.#http, this.#plan, this.#options.workerToken, options.signal).then(
        (submitted) => (this.#submitted = submitted),
      )
      submitting.catch(() => {
        this.#submitting = undefined // a failed create may be retried by the caller
      })
      this.#submitting = submitting
    }
    return this.#submitting.then((s) => s.jobId)
  }

  #require(what: string): SubmittedJob {
    if (this.#submitted === undefined) {
      throw new JobsError(
        JobsErrorCode.NotSubmitted,
        `${what} needs a submitted job: await job.submit() first.`,
      )
    }
    return this.#submitted
  }

  /** The job's status from the backend (G2 tries its fallback status routes on 404). */
  async status(options: { signal?: AbortSignal } = {}): Promise<JobSnapshot> {
    const { jobId, generation } = this.#require('status()')
    const paths = WIRE_ROUTES[generation].status(jobId)
    for (const [i, path] of paths.entries()) {
      const input: SendInput = {
        method: 'GET',
        path,
        signal: options.signal,
        what: 'read the job status',
        jobId,
      }
      const reply = await send(this.#http, input)
      if (reply.status === 404 && i < paths.length - 1) continue
      checkReply(reply, input)
      const body = reply.json
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw protocolError(input, 'a JSON object with "status"', reply)
      }
      const record = body as Record<string, unknown>
      if (typeof record.status !== 'string' && typeof record.state !== 'string') {
        throw protocolError(input, 'a JSON object with "status"', reply)
      }
      return snapshotOf(jobId, record)
    }
    throw new Error('unreachable: status routes are never empty')
  }

  #eventContext(): EventSourceContext {
    const { jobId, generation } = this.#require('events()')
    return {
      http: this.#http,
      routes: WIRE_ROUTES[generation],
      jobId,
      pollIntervalMs: this.#options.pollIntervalMs,
      maxStreamFailures: this.#options.maxStreamFailures,
      fetchStatus: (signal) => this.status({ ...(signal ? { signal } : {}) }),
    }
  }

  /**
   * The job's events in order, each once: the SSE stream, resumed from the last `seq` after a drop
   * (pages of events fill the gap), and pages of events polled when the stream is unavailable or
   * keeps failing. Ends after a terminal event (`…job.completed|failed|cancelled|paused`) or when the
   * status says the job is over. Events without `seq` are deduplicated by id (see the README).
   */
  events(options: EventsOptions = {}): AsyncGenerator<JobEvent, void, undefined> {
    const ctx = this.#eventContext()
    const results = this.#results
    const source = jobEvents(ctx, new EventCursor(options.sinceSeq), options.signal)
    return (async function* () {
      for await (const event of source) {
        results.add(event)
        yield event
      }
    })()
  }

  /**
   * Follows the events until the job is over and resolves with its {@link JobResult} when it
   * `succeeded` (or is `paused`: check `result.status`). Rejects with `TASKAPP_ERR_JOBS_JOB_FAILED`
   * (the backend's message), `TASKAPP_ERR_JOBS_CANCELLED`, `TASKAPP_ERR_JOBS_TIMEOUT` after
   * `timeoutMs` (the job keeps running), or `signal.reason`.
   */
  async waitUntilComplete(options: WaitOptions = {}): Promise<JobResult> {
    const { jobId } = this.#require('waitUntilComplete()')
    return waitForJob({
      jobId,
      options,
      events: (signal) => this.events({ signal }),
      result: (signal) => this.result({ signal }),
    })
  }

  /**
   * Asks the backend to cancel the job (G3 `PATCH {state: "cancelled"}`, older `POST …/cancel`).
   * Cancellation is cooperative: the job stops at its next checkpoint and then reports `cancelled`.
   */
  async cancel(options: { reason?: string; signal?: AbortSignal } = {}): Promise<void> {
    const { jobId, generation } = this.#require('cancel()')
    const { method, paths } = WIRE_ROUTES[generation].cancel(jobId)
    const body =
      generation === 'g3'
        ? { state: 'cancelled', reason: options.reason ?? null }
        : { reason: options.reason }
    for (const [i, path] of paths.entries()) {
      const input: SendInput = { method, path, body, signal: options.signal, what: 'cancel the job', jobId }
      const reply = await send(this.#http, input)
      if (reply.status === 404 && i < paths.length - 1) continue
      checkReply(reply, input)
      return
    }
  }

  /**
   * The job's result now: the status reply, plus every event seen by `events()`/`waitUntilComplete()`
   * and any later ones read from the events pages. Best score and prompt come from the status when
   * it has them, else from the events; per-candidate scores from the events.
   */
  async result(options: { signal?: AbortSignal } = {}): Promise<JobResult> {
    this.#require('result()')
    // Later events from the pages; skipped when the backend sends no seq and events were seen
    // already (paging would start from the first event again).
    if (this.#results.lastSeq !== undefined || !this.#results.seenAny) {
      const catchUp = pageAll(this.#eventContext(), new EventCursor(this.#results.lastSeq), options.signal)
      for (let next = await catchUp.next(); next.done !== true; next = await catchUp.next()) {
        this.#results.add(next.value)
      }
    }
    return this.#results.build(await this.status(options))
  }

  /** Closes the job's own undici agent (not a `dispatcher` passed in). Safe to call twice. */
  async close(): Promise<void> {
    if (this.#ownAgent !== undefined && !this.#ownAgent.closed) await this.#ownAgent.close()
  }

  /** `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}
