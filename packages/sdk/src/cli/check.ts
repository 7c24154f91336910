/** `taskapp check <url>`: probe a task app's /health, then read /info; say what failed. */
import { checkHealth, waitForHealthy, HealthCheckError } from '@taskapp/health-checker'
import type { CheckCommand } from './args'
import {
  diagnoseAnswer,
  diagnoseNoAnswer,
  sentCredentials,
  type CheckReason,
  type Diagnosis,
  type SentCredentials,
} from './check-diagnosis'
import type { CliIo } from './output'
import { renderError } from './render-error'

/** What `taskapp check --json` prints. */
export interface CheckReport {
  readonly url: string
  readonly healthy: boolean
  readonly status: number | undefined
  readonly elapsedMs: number
  /** What failed, in words: nothing listening, the relay or the app refusing (and which credential), ... */
  readonly error: string | undefined
  /** The same as a stable value (`not_listening`, `worker_token_missing`, `api_key_refused`, ...; see the README). */
  readonly reason: CheckReason | undefined
  /** The `/info` body when it answered 200 with JSON, else `null`. */
  readonly info: unknown
  readonly infoStatus: number | undefined
}

function requestHeaders(cmd: CheckCommand): Record<string, string> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (cmd.apiKey !== undefined) {
    headers['x-api-key'] = cmd.apiKey
    headers.authorization = `Bearer ${cmd.apiKey}`
  }
  for (const [k, v] of Object.entries(cmd.headers)) headers[k.toLowerCase()] = v
  return headers
}

/** The code and message of a fetch failure (undici puts the socket error in `cause`). */
function fetchError(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } }
  return [e.cause?.code, e.cause?.message ?? e.message].filter((part) => part !== undefined).join(': ')
}

async function readInfo(
  cmd: CheckCommand,
  signal: AbortSignal,
  sent: SentCredentials,
): Promise<{ status: number | undefined; info: unknown; failure?: Diagnosis }> {
  try {
    const res = await fetch(`${cmd.url}/info`, { headers: requestHeaders(cmd), signal })
    const text = await res.text()
    if (!res.ok)
      return { status: res.status, info: null, failure: diagnoseAnswer('/info', res.status, text, sent) }
    try {
      return { status: res.status, info: JSON.parse(text) as unknown }
    } catch {
      return {
        status: res.status,
        info: null,
        failure: { reason: 'bad_info', message: '/info did not answer JSON' },
      }
    }
  } catch (err) {
    if (signal.aborted && signal.reason !== undefined && !(signal.reason instanceof DOMException))
      throw signal.reason
    return { status: undefined, info: null, failure: diagnoseNoAnswer(`${cmd.url}/info`, fetchError(err)) }
  }
}

/** Why `waitForHealthy` gave up: from what its last probe saw. */
function waitFailure(err: unknown, healthUrl: string, timeoutMs: number, sent: SentCredentials): Diagnosis {
  if (!(err instanceof HealthCheckError) || err.last === undefined) {
    return { reason: 'no_answer', message: renderError(err, { command: 'check' }).message }
  }
  const { status, body, error } = err.last
  let seen: Diagnosis
  if (status !== undefined) seen = diagnoseAnswer('/health', status, body, sent)
  else if (error !== undefined) seen = diagnoseNoAnswer(healthUrl, error)
  else return { reason: 'no_answer', message: renderError(err, { command: 'check' }).message }
  return err.code === 'TASKAPP_ERR_HEALTH_TIMEOUT'
    ? { reason: seen.reason, message: `not healthy within --timeout ${timeoutMs} ms: ${seen.message}` }
    : seen
}

/** Probes `/health` once or, with `--wait`, until healthy; the failure says why. */
async function probeHealth(
  cmd: CheckCommand,
  sent: SentCredentials,
  signal: AbortSignal | undefined,
): Promise<{ status: number | undefined; elapsedMs: number; failure?: Diagnosis }> {
  const healthUrl = `${cmd.url}/health`
  const probeOptions = {
    ...(cmd.apiKey !== undefined && { apiKey: cmd.apiKey }),
    headers: cmd.headers,
    requestTimeoutMs: Math.min(cmd.timeoutMs, 10_000),
    ...(signal !== undefined && { signal }),
  }
  if (cmd.wait) {
    const started = performance.now()
    try {
      const result = await waitForHealthy(healthUrl, { ...probeOptions, timeoutMs: cmd.timeoutMs })
      return { status: result.status, elapsedMs: result.elapsedMs }
    } catch (err) {
      if (signal?.aborted) throw signal.reason
      const status = err instanceof HealthCheckError ? err.last?.status : undefined
      const failure = waitFailure(err, healthUrl, cmd.timeoutMs, sent)
      return { status, elapsedMs: performance.now() - started, failure }
    }
  }
  const result = await checkHealth(healthUrl, probeOptions)
  if (result.healthy) return { status: result.status, elapsedMs: result.elapsedMs }
  const failure =
    result.status !== undefined
      ? diagnoseAnswer('/health', result.status, result.body, sent)
      : diagnoseNoAnswer(healthUrl, result.error ?? 'no answer')
  return { status: result.status, elapsedMs: result.elapsedMs, failure }
}

/**
 * Probes `<url>/health` (once, or until healthy with `--wait`), then `GET <url>/info`; builds
 * the report. Never throws for an unhealthy app (the report says why); rejects only when
 * `signal` aborts.
 *
 * @example
 * ```ts
 * const report = await runCheckProbe({ command: 'check', url: 'http://127.0.0.1:8114', headers: {}, timeoutMs: 5000, wait: false, json: false })
 * ```
 */
export async function runCheckProbe(cmd: CheckCommand, signal?: AbortSignal): Promise<CheckReport> {
  const deadline = AbortSignal.timeout(cmd.timeoutMs)
  const combined = signal ? AbortSignal.any([signal, deadline]) : deadline
  const sent = sentCredentials(cmd)
  const health = await probeHealth(cmd, sent, signal)
  let failure = health.failure
  let info: unknown = null
  let infoStatus: number | undefined
  if (failure === undefined) {
    const read = await readInfo(cmd, combined, sent)
    info = read.info
    infoStatus = read.status
    failure = read.failure
  }
  return {
    url: cmd.url,
    healthy: health.failure === undefined,
    status: health.status,
    elapsedMs: Math.round(health.elapsedMs * 10) / 10,
    error: failure?.message,
    reason: failure?.reason,
    info,
    infoStatus,
  }
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined
}

function describeInfo(info: unknown): string[] {
  if (info === null || typeof info !== 'object') return []
  const o = info as Record<string, Record<string, unknown> | undefined>
  const task = (o.service?.task ?? {}) as Record<string, unknown>
  const dataset = o.dataset ?? {}
  const lines: string[] = []
  const taskId = text(task.id)
  const taskName = text(task.name)
  if (taskId !== undefined || taskName !== undefined) {
    lines.push(
      `  task:    ${taskName ?? taskId}${taskId !== undefined && taskName !== undefined ? ` (${taskId})` : ''}`,
    )
  }
  const datasetName = text(dataset.name) ?? text(dataset.id)
  if (datasetName !== undefined || Array.isArray(dataset.splits)) {
    const splits = Array.isArray(dataset.splits)
      ? ` splits: ${dataset.splits.map((s) => text(s) ?? '?').join(', ')}`
      : ''
    lines.push(`  dataset: ${datasetName ?? '?'}${splits}`)
  }
  return lines
}

/**
 * Runs `taskapp check` and prints the result; resolves to the exit status (0 healthy, 1 not).
 *
 * @example
 * ```ts
 * const status = await runCheck(cmd, { stdout: process.stdout, stderr: process.stderr })
 * ```
 */
export async function runCheck(cmd: CheckCommand, io: CliIo, signal?: AbortSignal): Promise<number> {
  const report = await runCheckProbe(cmd, signal)
  const ok = report.healthy && report.infoStatus === 200
  if (cmd.json) {
    io.stdout.write(`${JSON.stringify(report)}\n`)
    return ok ? 0 : 1
  }
  if (report.healthy) {
    io.stdout.write(`✓ healthy  ${cmd.url}/health  HTTP ${report.status ?? '?'} in ${report.elapsedMs} ms\n`)
  } else {
    io.stdout.write(`✗ unhealthy  ${cmd.url}/health  ${report.error ?? ''}\n`)
    return 1
  }
  if (report.infoStatus === 200) {
    io.stdout.write(`✓ info     ${cmd.url}/info  HTTP 200\n`)
    for (const line of describeInfo(report.info)) io.stdout.write(`${line}\n`)
  } else {
    io.stdout.write(`✗ info     ${cmd.url}/info  ${report.error ?? ''}\n`)
  }
  return ok ? 0 : 1
}
