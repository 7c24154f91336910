/**
 * Rollout tracking in MLflow over its REST API (no MLflow client library): one run per rollout,
 * with params from the request, and the metrics `execution_time_ms`, `success` and
 * `outcome_reward`.
 */
import type { RolloutCompleteEvent, RolloutCompleteHook } from './config'
import { TaskServerError } from './errors'
import { safeLog, silentLogger, type TaskAppLogger } from './logger'

/** Options of {@link createMlflowTracker}. */
export interface MlflowTrackerOptions {
  /** Base URL of the MLflow tracking server, e.g. `http://127.0.0.1:5000`. */
  trackingUri: string
  /** Experiment name; created when it does not exist. */
  experiment: string
  /**
   * Run name of one rollout.
   * @default (event) => `rollout-${event.request.trace_correlation_id}`
   */
  runName?: (event: RolloutCompleteEvent) => string
  /**
   * Extra headers on every call (e.g. `Authorization` for a hosted server). Never logged.
   * @default {}
   */
  headers?: Readonly<Record<string, string>>
  /**
   * Tags added to every run.
   * @default {}
   */
  tags?: Readonly<Record<string, string>>
  /**
   * Deadline of one REST call, in milliseconds.
   * @default 10000
   */
  timeoutMs?: number
  /**
   * Where failures of `onRolloutComplete` are reported (at `warn`).
   * @default a silent logger
   */
  logger?: TaskAppLogger
}

/** What {@link createMlflowTracker} returns. */
export interface MlflowTracker {
  /** Pass as `onRolloutComplete`; logs the rollout and never throws (failures go to the logger). */
  readonly onRolloutComplete: RolloutCompleteHook
  /** Logs one rollout as an MLflow run and resolves with its id; rejects with `TASKAPP_ERR_MLFLOW_REQUEST_FAILED`. */
  logRollout(event: RolloutCompleteEvent, options?: { signal?: AbortSignal }): Promise<{ runId: string }>
}

const MAX_PARAM_LENGTH = 500

function paramsOf(event: RolloutCompleteEvent): { key: string; value: string }[] {
  const { request } = event
  const model = request.policy.config.model
  const candidates: Record<string, string | number | null | undefined> = {
    trace_correlation_id: request.trace_correlation_id,
    env_name: request.env.env_name,
    env_id: request.env.env_id,
    seed: request.env.seed,
    policy_name: request.policy.policy_name,
    policy_id: request.policy.policy_id,
    model: typeof model === 'string' ? model : undefined,
    output_mode: request.policy.output_mode,
  }
  const params: { key: string; value: string }[] = []
  for (const [key, value] of Object.entries(candidates)) {
    if (value === undefined || value === null || value === '') continue
    params.push({ key, value: String(value).slice(0, MAX_PARAM_LENGTH) })
  }
  return params
}

/** Throws `TASKAPP_ERR_INVALID_CONFIG` listing every bad option; returns the effective `timeoutMs`. */
function validatedTimeoutMs(options: MlflowTrackerOptions): number {
  const problems: string[] = []
  if (typeof options?.trackingUri !== 'string' || !URL.canParse(options.trackingUri)) {
    problems.push('trackingUri must be an absolute http(s) URL')
  } else if (!/^https?:$/.test(new URL(options.trackingUri).protocol)) {
    problems.push('trackingUri must use http or https')
  }
  if (typeof options?.experiment !== 'string' || options.experiment.trim() === '') {
    problems.push('experiment must be a non-empty string')
  }
  const timeoutMs = options?.timeoutMs ?? 10_000
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) problems.push('timeoutMs must be a positive number')
  if (problems.length > 0) {
    throw new TaskServerError(
      'TASKAPP_ERR_INVALID_CONFIG',
      `Invalid MLflow tracker options: ${problems.join('; ')}.`,
    )
  }
  return timeoutMs
}

/** The `TASKAPP_ERR_MLFLOW_REQUEST_FAILED` error for an unexpected MLflow answer to `path`. */
function mlflowFailure(path: string, status: number, data: unknown): TaskServerError {
  const body = data as { error_code?: unknown; message?: unknown }
  const detail = typeof body?.error_code === 'string' ? ` ${body.error_code}` : ''
  return new TaskServerError(
    'TASKAPP_ERR_MLFLOW_REQUEST_FAILED',
    `MLflow answered ${status}${detail} to ${path}; check the tracking URI, experiment and credentials.`,
  )
}

/** Tags of one run: the configured ones, the request id, and the error code of a failed rollout. */
function runTags(
  event: RolloutCompleteEvent,
  extra: Readonly<Record<string, string>> | undefined,
): { key: string; value: string }[] {
  const tags = Object.entries({ ...extra, 'taskapp.request_id': event.requestId }).map(([key, value]) => ({
    key,
    value,
  }))
  if (event.error) tags.push({ key: 'taskapp.error_code', value: event.error.code })
  return tags
}

/** Metrics of one run, all at step 0 and timestamp `end`. */
function runMetrics(
  event: RolloutCompleteEvent,
  end: number,
  success: boolean,
): { key: string; value: number; timestamp: number; step: number }[] {
  const metrics = [
    { key: 'execution_time_ms', value: event.durationMs, timestamp: end, step: 0 },
    { key: 'success', value: success ? 1 : 0, timestamp: end, step: 0 },
  ]
  if (event.response) {
    metrics.push({
      key: 'outcome_reward',
      value: event.response.reward_info.outcome_reward,
      timestamp: end,
      step: 0,
    })
  }
  return metrics
}

/** Minimal MLflow REST client: JSON calls under a deadline, and the experiment id resolved once. */
class MlflowRestClient {
  private readonly base: string
  private readonly options: MlflowTrackerOptions
  private readonly timeoutMs: number
  private experimentId: Promise<string> | undefined

  constructor(base: string, options: MlflowTrackerOptions, timeoutMs: number) {
    this.base = base
    this.options = options
    this.timeoutMs = timeoutMs
  }

  /** One REST call; resolves with the status and parsed body, rejects only when the request fails. */
  async call<T>(
    path: string,
    init: { method: 'GET' | 'POST'; body?: unknown },
    signal?: AbortSignal,
  ): Promise<{ status: number; data: T }> {
    const timeout = AbortSignal.timeout(this.timeoutMs)
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout
    let response: globalThis.Response
    try {
      response = await fetch(`${this.base}${path}`, {
        method: init.method,
        headers: {
          ...this.options.headers,
          ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal: combined,
      })
    } catch (err) {
      if (signal?.aborted) throw signal.reason
      throw new TaskServerError(
        'TASKAPP_ERR_MLFLOW_REQUEST_FAILED',
        `MLflow call ${init.method} ${path} failed (${(err as Error).message}); check that the tracking server at ${this.base} is up.`,
        { cause: err },
      )
    }
    const text = await response.text()
    let data: unknown
    try {
      data = text === '' ? {} : JSON.parse(text)
    } catch {
      data = { raw: text.slice(0, 200) }
    }
    return { status: response.status, data: data as T }
  }

  /** POSTs `body` to `path` and resolves with the answer; any status but 200 rejects. */
  async post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    const r = await this.call<T>(path, { method: 'POST', body }, signal)
    if (r.status !== 200) throw mlflowFailure(path, r.status, r.data)
    return r.data
  }

  /** The experiment id, looked up (or created) once; a failed lookup is retried on the next call. */
  async experiment(signal?: AbortSignal): Promise<string> {
    this.experimentId ??= this.resolveExperiment(signal)
    try {
      return await this.experimentId
    } catch (err) {
      this.experimentId = undefined // retry on the next rollout
      throw err
    }
  }

  /** Finds the experiment by name, creating it when it does not exist. */
  private async resolveExperiment(signal?: AbortSignal): Promise<string> {
    const name = encodeURIComponent(this.options.experiment)
    const found = await this.call<{ experiment?: { experiment_id?: string }; error_code?: string }>(
      `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${name}`,
      { method: 'GET' },
      signal,
    )
    if (found.status === 200 && typeof found.data.experiment?.experiment_id === 'string') {
      return found.data.experiment.experiment_id
    }
    if (found.status !== 404 && found.data.error_code !== 'RESOURCE_DOES_NOT_EXIST') {
      throw mlflowFailure('/api/2.0/mlflow/experiments/get-by-name', found.status, found.data)
    }
    const created = await this.call<{ experiment_id?: string }>(
      '/api/2.0/mlflow/experiments/create',
      { method: 'POST', body: { name: this.options.experiment } },
      signal,
    )
    if (created.status !== 200 || typeof created.data.experiment_id !== 'string') {
      throw mlflowFailure('/api/2.0/mlflow/experiments/create', created.status, created.data)
    }
    return created.data.experiment_id
  }
}

/**
 * Creates a tracker that logs every rollout to an MLflow tracking server. Its failures are logged
 * and never break a rollout.
 *
 * @example
 * ```ts
 * const tracker = createMlflowTracker({ trackingUri: 'http://127.0.0.1:5000', experiment: 'banking77' })
 * const app = createTaskApp({ ...config, onRolloutComplete: tracker.onRolloutComplete })
 * ```
 */
export function createMlflowTracker(options: MlflowTrackerOptions): MlflowTracker {
  const timeoutMs = validatedTimeoutMs(options)
  const client = new MlflowRestClient(options.trackingUri.replace(/\/+$/, ''), options, timeoutMs)
  const logger = options.logger ?? silentLogger
  const runName =
    options.runName ?? ((e: RolloutCompleteEvent) => `rollout-${e.request.trace_correlation_id}`)

  async function logRollout(
    event: RolloutCompleteEvent,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ runId: string }> {
    opts.signal?.throwIfAborted()
    const expId = await client.experiment(opts.signal)
    const end = Date.now()
    const start = Math.round(end - event.durationMs)
    const tags = runTags(event, options.tags)
    const created = await client.post<{ run?: { info?: { run_id?: string } } }>(
      '/api/2.0/mlflow/runs/create',
      { experiment_id: expId, run_name: runName(event), start_time: start, tags },
      opts.signal,
    )
    const runId = created.run?.info?.run_id
    if (typeof runId !== 'string') throw mlflowFailure('/api/2.0/mlflow/runs/create', 200, created)
    const success = event.error === undefined && event.response !== undefined
    await client.post(
      '/api/2.0/mlflow/runs/log-batch',
      { run_id: runId, params: paramsOf(event), metrics: runMetrics(event, end, success), tags: [] },
      opts.signal,
    )
    await client.post(
      '/api/2.0/mlflow/runs/update',
      { run_id: runId, status: success ? 'FINISHED' : 'FAILED', end_time: end },
      opts.signal,
    )
    return { runId }
  }

  return {
    logRollout,
    onRolloutComplete: async (event) => {
      try {
        await logRollout(event)
      } catch (err) {
        safeLog(logger, 'warn', { err, requestId: event.requestId }, 'mlflow: could not log the rollout')
      }
    },
  }
}
