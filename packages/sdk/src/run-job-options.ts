/**
 * The options of `runInProcessJob`, what it reports while it runs and what it returns, and the
 * checks of those options (before anything starts).
 */
import type { InProcessTaskApp, InProcessTaskAppOptions, TunnelSpec } from '@taskapp/in-process'
import type { JobEvent, JobResult, JobStatus } from '@taskapp/jobs'
import { SdkError } from './errors'
import type { JobProgress } from './job-progress'

/** Options of `runInProcessJob`. Give exactly one of `configPath` and `config`. */
export interface RunInProcessJobOptions {
  /**
   * The kind of job. Only prompt learning (GEPA, MIPRO) exists.
   * @default 'prompt_learning'
   */
  readonly jobType?: 'prompt_learning'
  /** A TOML job config with a `[prompt_learning]` table (synth-ai's format). */
  readonly configPath?: string
  /** The same config as an object (not modified). */
  readonly config?: Record<string, unknown>
  /**
   * The job backend (Synth's, or a local one). Nested so that the Synth key is never confused with
   * the task app's own `taskApp.apiKey`.
   */
  readonly backend?: {
    /**
     * Backend base URL. A localhost URL means no tunnel by default (the backend reaches the app
     * directly).
     * @default `SYNTH_BACKEND_URL_OVERRIDE`, then `SYNTH_BACKEND_URL`, else https://api.usesynth.ai
     */
    readonly url?: string
    /**
     * The Synth API key the job API wants (never sent to the task app).
     * @default env.SYNTH_API_KEY
     */
    readonly apiKey?: string
  }
  /**
   * synth-ai dot-notation overrides merged into the config (`'prompt_learning.gepa.rollout.budget': 120`);
   * `task_url` is always the task app's URL.
   * @default {}
   */
  readonly overrides?: Record<string, unknown>
  /**
   * Follow the job to its end. `false` returns once the job is created (status `submitted`) and,
   * as synth-ai does, stops the task app: the job then needs a task app it can reach otherwise.
   * @default true
   */
  readonly poll?: boolean
  /**
   * Pause between two polls when the backend's event stream is not used.
   * @default 5000
   */
  readonly pollIntervalMs?: number
  /**
   * Give up after this long: the job is cancelled, the task app stopped, and the call rejects with
   * `TASKAPP_ERR_JOBS_TIMEOUT`.
   * @default 3600000 (one hour, synth-ai's default)
   */
  readonly timeoutMs?: number
  /**
   * After an abort, a signal or a timeout: how long to wait for the backend to report the job
   * `cancelled` before the task app is stopped anyway.
   * @default 15000
   */
  readonly cancelTimeoutMs?: number
  /** Called at each step and with every job event (see {@link InProcessJobUpdate}). */
  readonly onStatus?: (update: InProcessJobUpdate) => void
  /**
   * The task app, as `InProcessTaskApp` takes it (`taskAppPath`, `configFactory`, ...,
   * `containerAuth`, `apiKey`, `port`). `tunnel` defaults to `{ mode: 'local' }` for a localhost
   * backend, else to a SynthTunnel on the backend with the Synth key. `signal` and
   * `handleSignals` are this function's own options.
   */
  readonly taskApp: Omit<InProcessTaskAppOptions<InProcessTaskApp>, 'signal' | 'handleSignals'>
  /** Aborting it cancels the job (waiting up to `cancelTimeoutMs`), stops the task app, and rejects with `signal.reason`. */
  readonly signal?: AbortSignal
  /**
   * On SIGINT/SIGTERM: cancel the job, stop the task app, then let the process die of the signal
   * (unless it has handlers of its own; then reject with `TASKAPP_ERR_INTERRUPTED`).
   * @default true
   */
  readonly handleSignals?: boolean
  /**
   * Where `SYNTH_API_KEY`, `SYNTH_BACKEND_URL_OVERRIDE` and `SYNTH_BACKEND_URL` are read. Never written.
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>
}

/**
 * What `onStatus` gets: the step (`task-app-started`, `submitted`, `event` for each job event,
 * `cancelling` when the run cancels the job, `finished` once the job is over or the cancel was
 * waited for), the job's progress so far, and the event itself for `event`.
 */
export interface InProcessJobUpdate {
  readonly phase: 'task-app-started' | 'submitted' | 'event' | 'cancelling' | 'finished'
  /** Set from `submitted` on. */
  readonly jobId: string | undefined
  /** The task app's URL the job was given (set from `task-app-started` on). */
  readonly taskAppUrl: string | undefined
  /** The tunnel mode of the task app (`local`, `synthtunnel`, ...). */
  readonly tunnelMode: string | undefined
  /**
   * At `finished`: the job's last status (`running` if a cancel was not confirmed within
   * `cancelTimeoutMs`); `submitted` at `submitted` with `poll: false`.
   */
  readonly status: JobStatus | 'submitted' | undefined
  /** The event of an `event` update. */
  readonly event: JobEvent | undefined
  readonly progress: JobProgress
  /**
   * The job's live page (`<backend>/jobs/<id>`, served by taskapp's local backend), set from
   * `submitted` on when the backend URL is a loopback one.
   */
  readonly pageUrl?: string
}

/** How the task app's health was established before the job was submitted. */
export interface TaskAppHealth {
  /** Always true once a job was submitted (the app does not start otherwise). */
  readonly ok: boolean
  /** `local`: `GET /health` on the local URL; `public`: also through the tunnel (`taskApp.verifyTunnel`). */
  readonly checked: 'local' | 'public'
  /** The URL checked last. */
  readonly url: string
  readonly detail: string
}

/** What `runInProcessJob` resolves with, for every job that ended (check `status`). */
export interface InProcessJobResult {
  readonly jobId: string
  /** `submitted` with `poll: false`; else the job's final status. */
  readonly status: JobStatus | 'submitted'
  /** The job's result (scores, best prompt, candidates, error); `undefined` with `poll: false`. */
  readonly result: JobResult | undefined
  /** The URL the job was given for the task app. */
  readonly taskAppUrl: string
  /** The backend root the job went to. */
  readonly backendUrl: string
  /** The job's live page on a loopback backend (`<backend>/jobs/<id>`); see {@link InProcessJobUpdate.pageUrl}. */
  readonly pageUrl?: string
  readonly health: TaskAppHealth
}

/** The options once checked. */
export interface CheckedJobOptions {
  readonly source: { configPath: string } | { config: Record<string, unknown> }
  readonly backendUrl: string | undefined
  readonly apiKey: string
  readonly poll: boolean
  readonly timeoutMs: number
  readonly cancelTimeoutMs: number
  readonly handleSignals: boolean
  readonly env: Readonly<Record<string, string | undefined>>
}

const KNOWN = new Set([
  'jobType',
  'configPath',
  'config',
  'backend',
  'overrides',
  'poll',
  'pollIntervalMs',
  'timeoutMs',
  'cancelTimeoutMs',
  'onStatus',
  'taskApp',
  'signal',
  'handleSignals',
  'env',
])

function invalid(message: string): SdkError {
  return new SdkError('TASKAPP_ERR_INVALID_JOB_OPTIONS', `runInProcessJob: ${message}`)
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function ms(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 2_147_483_647) {
    throw invalid(
      `${name} must be a whole number of milliseconds from 1 to 2147483647; got ${typeof value === 'number' ? value : JSON.stringify(value)}.`,
    )
  }
  return value
}

function checkBackend(backend: unknown): { url: string | undefined; apiKey: string | undefined } {
  if (backend === undefined) return { url: undefined, apiKey: undefined }
  if (!isObject(backend)) throw invalid('backend must be an object { url?, apiKey? }.')
  const unknown = Object.keys(backend).filter((k) => k !== 'url' && k !== 'apiKey')
  if (unknown.length > 0) throw invalid(`backend takes url and apiKey; got ${unknown.join(', ')}.`)
  const { url, apiKey } = backend
  if (url !== undefined) {
    let ok: boolean
    try {
      ok = typeof url === 'string' && ['http:', 'https:'].includes(new URL(url).protocol)
    } catch {
      ok = false
    }
    if (!ok)
      throw invalid(
        `backend.url must be an http(s) URL such as http://127.0.0.1:8000; got ${JSON.stringify(url)}.`,
      )
  }
  if (apiKey !== undefined && (typeof apiKey !== 'string' || apiKey.trim() === '')) {
    throw invalid('backend.apiKey must be a non-empty string (the Synth API key).')
  }
  return { url: url as string | undefined, apiKey: apiKey }
}

function checkTaskApp(taskApp: unknown): void {
  if (!isObject(taskApp)) {
    throw invalid('taskApp is required: the InProcessTaskApp options, e.g. { taskAppPath: "./task-app.ts" }.')
  }
  for (const key of ['signal', 'handleSignals'] as const) {
    if (key in taskApp) throw invalid(`taskApp.${key} is not taken: use runInProcessJob's own ${key}.`)
  }
}

/** Checks every option before anything starts; throws `TASKAPP_ERR_INVALID_JOB_OPTIONS` naming the bad one. */
export function checkJobOptions(options: RunInProcessJobOptions): CheckedJobOptions {
  if (!isObject(options)) throw invalid('takes an options object { configPath, taskApp, ... }.')
  const unknown = Object.keys(options).filter((k) => !KNOWN.has(k))
  if (unknown.length > 0)
    throw invalid(`unknown option(s) ${unknown.join(', ')}; the options are ${[...KNOWN].join(', ')}.`)
  if (options.jobType !== undefined && options.jobType !== 'prompt_learning') {
    throw invalid(
      `jobType must be "prompt_learning" (the only job type); got ${JSON.stringify(options.jobType)}.`,
    )
  }
  const hasPath = options.configPath !== undefined
  if (hasPath === (options.config !== undefined)) {
    throw invalid('give exactly one of configPath (a TOML file) and config (an object).')
  }
  if (hasPath && (typeof options.configPath !== 'string' || options.configPath.trim() === '')) {
    throw invalid('configPath must be a file path.')
  }
  if (!hasPath && !isObject(options.config)) throw invalid('config must be an object (the parsed TOML).')
  checkTaskApp(options.taskApp)
  const backend = checkBackend(options.backend)
  const env = options.env ?? process.env
  const apiKey = backend.apiKey ?? env.SYNTH_API_KEY?.trim()
  if (!apiKey) throw invalid('the Synth API key is missing: pass backend.apiKey or set SYNTH_API_KEY.')
  for (const key of ['poll', 'handleSignals'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean')
      throw invalid(`${key} must be true or false.`)
  }
  if (options.onStatus !== undefined && typeof options.onStatus !== 'function') {
    throw invalid('onStatus must be a function (update) => void.')
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw invalid('signal must be an AbortSignal.')
  }
  ms(options.pollIntervalMs, 'pollIntervalMs', 5000)
  return {
    source: hasPath
      ? { configPath: options.configPath }
      : { config: options.config as Record<string, unknown> },
    backendUrl: backend.url,
    apiKey,
    poll: options.poll ?? true,
    timeoutMs: ms(options.timeoutMs, 'timeoutMs', 3_600_000),
    cancelTimeoutMs: ms(options.cancelTimeoutMs, 'cancelTimeoutMs', 15_000),
    handleSignals: options.handleSignals ?? true,
    env,
  }
}

/** Whether a backend URL is on this machine (then the task app needs no tunnel, as in synth-ai). */
export function isLocalBackend(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '')
  return (
    host === 'localhost' ||
    host === '::1' ||
    host === 'host.docker.internal' ||
    /^127\.\d+\.\d+\.\d+$/.test(host)
  )
}

/**
 * The task app's tunnel: the caller's, else none for a localhost backend, else a SynthTunnel on
 * the backend itself with the Synth key (or the relay at `TASKAPP_RELAY_URL` with its own key).
 */
export function defaultTunnel(
  given: RunInProcessJobOptions['taskApp']['tunnel'],
  backendUrl: string,
  apiKey: string,
  env: Readonly<Record<string, string | undefined>>,
): NonNullable<RunInProcessJobOptions['taskApp']['tunnel']> {
  if (given !== undefined) return given
  if (isLocalBackend(backendUrl)) return { mode: 'local' }
  if (env.TASKAPP_RELAY_URL?.trim()) return { mode: 'synthtunnel' }
  return { mode: 'synthtunnel', relayUrl: backendUrl, relayApiKey: apiKey } satisfies TunnelSpec
}
