/**
 * `runInProcessJob`: synth-ai's `run_in_process_job` for TypeScript. Starts a task app in this
 * process (with its tunnel), gives its URL and the tunnel's worker token to a prompt-optimization
 * job, submits the job, follows it, and stops everything when the job ends, fails, times out, is
 * aborted or the process gets SIGINT/SIGTERM.
 */
import { InProcessTaskApp } from '@taskapp/in-process'
import { JobsError, JobsErrorCode, PromptLearningJob, isFinalStatus } from '@taskapp/jobs'
import type { JobResult, JobStatus } from '@taskapp/jobs'
import { WORKER_TOKEN_HEADER } from '@taskapp/tunnel-synth'
import { SdkError } from './errors'
import { JobProgressTracker } from './job-progress'
import { watchProcessSignals } from './process-signals'
import {
  checkJobOptions,
  defaultTunnel,
  type CheckedJobOptions,
  type InProcessJobResult,
  type InProcessJobUpdate,
  type RunInProcessJobOptions,
  type TaskAppHealth,
} from './run-job-options'

/** What one run shares between its steps. */
interface Run {
  readonly options: RunInProcessJobOptions
  readonly checked: CheckedJobOptions
  readonly tracker: JobProgressTracker
  readonly signal: AbortSignal
  app?: InProcessTaskApp
  job?: PromptLearningJob
  jobId?: string
  /** Set once a cancel was sent (or found unneeded), so it happens once. */
  cancelled?: boolean
  pageUrl?: string
}

/**
 * The job page of taskapp's local backend (`<backend>/jobs/<id>`) when the backend URL is a
 * loopback one (only a browser on this machine may open it there); undefined otherwise.
 */
export function jobPageUrl(backendUrl: string, jobId: string): string | undefined {
  const url = new URL(backendUrl)
  const loopback = /^(?:127(?:\.\d{1,3}){3}|localhost|\[::1\])$/i.test(url.hostname)
  return loopback ? `${url.origin}/jobs/${encodeURIComponent(jobId)}` : undefined
}

function report(run: Run, update: Partial<InProcessJobUpdate> & Pick<InProcessJobUpdate, 'phase'>): void {
  run.options.onStatus?.({
    jobId: run.jobId,
    taskAppUrl: run.app?.state === 'running' ? run.app.url : undefined,
    tunnelMode: run.app?.tunnelMode,
    status: undefined,
    event: undefined,
    progress: run.tracker.snapshot(),
    ...(run.pageUrl !== undefined && { pageUrl: run.pageUrl }),
    ...update,
  })
}

/** The job built from the config, for `taskAppUrl` (a placeholder before the app runs: config check only). */
function jobFor(run: Run, taskAppUrl: string, workerToken: string | undefined): Promise<PromptLearningJob> {
  const { checked, options } = run
  return PromptLearningJob.fromConfig({
    ...checked.source,
    ...(checked.backendUrl !== undefined && { backendUrl: checked.backendUrl }),
    apiKey: checked.apiKey,
    ...(workerToken !== undefined && { workerToken }),
    overrides: { ...options.overrides, task_url: taskAppUrl },
    ...(options.pollIntervalMs !== undefined && { pollIntervalMs: options.pollIntervalMs }),
    env: checked.env,
    signal: run.signal,
  })
}

/**
 * Refuses an app the backend could not get into: one that wants headers (a key the tunnel does
 * not add) beyond the worker token, and verifies no container tokens. A job carries the worker
 * token and nothing else; the backend signs container tokens of its own.
 */
function checkReachable(app: InProcessTaskApp): void {
  if (app.containerTokens) return
  const wanted = Object.keys(app.headers).filter((h) => h.toLowerCase() !== WORKER_TOKEN_HEADER.toLowerCase())
  if (wanted.length === 0) return
  throw new SdkError(
    'TASKAPP_ERR_JOB_TASK_APP_AUTH',
    `runInProcessJob: the task app (${app.tunnelMode} tunnel) wants ${wanted.join(', ')} from its callers, and a job ` +
      "carries only the tunnel's worker token (the backend sends task apps no keys; it signs container tokens). " +
      "Make the app trust the backend's container-token key: taskApp.containerAuth { trustedKeys } (a local " +
      "backend's trustedKey; `taskapp dev-backend` prints it) or SYNTH_CONTAINER_TRUSTED_PUBKEYS; or reach it " +
      "through a relay, whose agent adds the key: taskApp.tunnel { mode: 'synthtunnel', relayUrl }.",
  )
}

async function startTaskApp(run: Run, backendUrl: string): Promise<InProcessTaskApp> {
  const { taskApp } = run.options
  const app = new InProcessTaskApp({
    ...taskApp,
    tunnel: defaultTunnel(taskApp.tunnel, backendUrl, run.checked.apiKey, run.checked.env),
    handleSignals: false,
  })
  run.app = app
  const stopOnAbort = (): void => void app.stop().catch(() => undefined)
  run.signal.addEventListener('abort', stopOnAbort, { once: true })
  try {
    await app.start()
  } catch (err) {
    run.signal.throwIfAborted()
    throw err
  } finally {
    run.signal.removeEventListener('abort', stopOnAbort)
  }
  run.signal.throwIfAborted()
  checkReachable(app)
  return app
}

/**
 * Cancels the job if it is still going, and waits (up to `cancelTimeoutMs`) until the backend says
 * it ended; reports `finished` with the last status read (`cancelled`, or still `running` when the
 * backend did not confirm in time).
 */
async function cancelJob(run: Run, reason: string): Promise<void> {
  const { job } = run
  if (job === undefined || run.jobId === undefined || run.cancelled === true) return
  run.cancelled = true
  const deadline = AbortSignal.timeout(run.checked.cancelTimeoutMs)
  let last: JobStatus | undefined
  try {
    last = (await job.status({ signal: deadline })).status
    if (isFinalStatus(last)) return
    report(run, { phase: 'cancelling' })
    await job.cancel({ reason, signal: deadline })
    for (;;) {
      last = (await job.status({ signal: deadline })).status
      if (isFinalStatus(last)) break
      await new Promise((resolve) => setTimeout(resolve, 200))
      deadline.throwIfAborted()
    }
  } catch {
    // Best effort: the job may have ended already, or the backend is gone; the app stops anyway.
  }
  if (last !== undefined) report(run, { phase: 'finished', status: last })
}

/** Follows the job to its end; resolves with its result for every final status. */
async function follow(run: Run, job: PromptLearningJob): Promise<JobResult> {
  try {
    return await job.waitUntilComplete({
      timeoutMs: run.checked.timeoutMs,
      signal: run.signal,
      onEvent: (event) => {
        run.tracker.add(event)
        report(run, { phase: 'event', event })
      },
    })
  } catch (err) {
    if (
      err instanceof JobsError &&
      (err.code === JobsErrorCode.JobFailed || err.code === JobsErrorCode.Cancelled)
    ) {
      return job.result({ signal: run.signal })
    }
    if (err instanceof JobsError && err.code === JobsErrorCode.Timeout) {
      await cancelJob(run, `runInProcessJob: timeoutMs (${run.checked.timeoutMs} ms) passed`)
      throw new JobsError(
        JobsErrorCode.Timeout,
        `Job ${run.jobId} did not finish within ${run.checked.timeoutMs} ms (timeoutMs); it was cancelled and the task app stopped.`,
        { jobId: run.jobId, cause: err },
      )
    }
    throw err
  }
}

function healthOf(app: InProcessTaskApp, verified: boolean): TaskAppHealth {
  return verified
    ? { ok: true, checked: 'public', url: app.url, detail: 'GET /health answered healthy through the tunnel' }
    : {
        ok: true,
        checked: 'local',
        url: app.localUrl,
        detail: 'GET /health answered healthy on the local URL',
      }
}

async function execute(run: Run): Promise<InProcessJobResult> {
  // The config is checked (and the backend URL resolved) before anything starts.
  const probe = await jobFor(run, 'http://127.0.0.1:1', undefined)
  const backendUrl = probe.backendUrl
  await probe.close()
  const app = await startTaskApp(run, backendUrl)
  report(run, { phase: 'task-app-started' })
  const job = await jobFor(run, app.url, app.taskAppWorkerToken)
  run.job = job
  run.jobId = await job.submit({ signal: run.signal })
  run.pageUrl = jobPageUrl(backendUrl, run.jobId)
  const base = {
    jobId: run.jobId,
    taskAppUrl: app.url,
    backendUrl,
    ...(run.pageUrl !== undefined && { pageUrl: run.pageUrl }),
    health: healthOf(app, run.options.taskApp.verifyTunnel === true),
  }
  if (!run.checked.poll) {
    report(run, { phase: 'submitted', status: 'submitted' })
    return { ...base, status: 'submitted', result: undefined }
  }
  report(run, { phase: 'submitted' })
  const result = await follow(run, job)
  run.tracker.settle(result.raw)
  report(run, { phase: 'finished', status: result.status })
  return { ...base, status: result.status, result }
}

/**
 * Runs a prompt-optimization job against a task app started in this process, as synth-ai's
 * `run_in_process_job` does: starts the app with its tunnel (none for a localhost backend), gives
 * the job the app's URL and the tunnel's worker token (`app.taskAppWorkerToken`), submits it,
 * follows its events, and stops the task app when the job ends. Resolves for every job that
 * ended (`status` `succeeded`, `failed`, `cancelled`; check it). Rejects, after cancelling the job
 * and stopping the app, on a bad option (`TASKAPP_ERR_INVALID_JOB_OPTIONS`, a job config error
 * `TASKAPP_ERR_JOBS_INVALID_CONFIG`, before anything starts), a task app that cannot start or that
 * the backend could not get into (`TASKAPP_ERR_JOB_TASK_APP_AUTH`), `timeoutMs`
 * (`TASKAPP_ERR_JOBS_TIMEOUT`), `signal` (its reason), SIGINT/SIGTERM, or a backend error.
 *
 * @example
 * ```ts
 * import { runInProcessJob } from '@taskapp/sdk'
 *
 * // SYNTH_API_KEY and SYNTH_BACKEND_URL from the environment
 * const { status, result } = await runInProcessJob({
 *   configPath: 'gepa.toml',
 *   taskApp: { taskAppPath: './task-app.ts', containerAuth: { trustedKeys: process.env.BACKEND_PUBKEY } },
 *   onStatus: ({ phase, progress }) => console.log(phase, progress.rolloutsUsed, progress.bestScore),
 * })
 * console.log(status, result?.baselineScore, '->', result?.bestScore)
 * ```
 */
export async function runInProcessJob(options: RunInProcessJobOptions): Promise<InProcessJobResult> {
  const checked = checkJobOptions(options)
  options.signal?.throwIfAborted()
  const controller = new AbortController()
  const onAbort = (): void => controller.abort(options.signal?.reason)
  options.signal?.addEventListener('abort', onAbort, { once: true })
  const signals = watchProcessSignals(checked.handleSignals, (sig) => {
    controller.abort(
      new SdkError(
        'TASKAPP_ERR_INTERRUPTED',
        `runInProcessJob: ${sig}: the job was cancelled and the task app stopped.`,
      ),
    )
  })
  const run: Run = {
    options,
    checked,
    tracker: new JobProgressTracker(performance.now()),
    signal: controller.signal,
  }
  try {
    return await execute(run)
  } catch (err) {
    // Whatever stopped the run, the job must not outlive the task app it was given.
    await cancelJob(run, controller.signal.aborted ? 'runInProcessJob was aborted' : 'runInProcessJob failed')
    throw controller.signal.aborted ? controller.signal.reason : err
  } finally {
    options.signal?.removeEventListener('abort', onAbort)
    await run.app?.stop().catch(() => undefined)
    await run.job?.close()
    signals.finish()
  }
}
