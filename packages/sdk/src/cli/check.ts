/** `taskapp check <url>`: probe a task app's /health, then read /info. */
import { checkHealth, waitForHealthy, HealthCheckError } from '@taskapp/health-checker'
import type { CheckCommand } from './args'
import type { CliIo } from './output'
import { renderError } from './render-error'

/** What `taskapp check --json` prints. */
export interface CheckReport {
  readonly url: string
  readonly healthy: boolean
  readonly status: number | undefined
  readonly elapsedMs: number
  readonly error: string | undefined
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

async function readInfo(
  cmd: CheckCommand,
  signal: AbortSignal,
): Promise<{ status: number | undefined; info: unknown; error?: string }> {
  try {
    const res = await fetch(`${cmd.url}/info`, { headers: requestHeaders(cmd), signal })
    const text = await res.text()
    if (!res.ok) return { status: res.status, info: null, error: `/info answered HTTP ${res.status}` }
    try {
      return { status: res.status, info: JSON.parse(text) as unknown }
    } catch {
      return { status: res.status, info: null, error: '/info did not answer JSON' }
    }
  } catch (err) {
    if (signal.aborted && signal.reason !== undefined && !(signal.reason instanceof DOMException))
      throw signal.reason
    return { status: undefined, info: null, error: `/info failed: ${(err as Error).message}` }
  }
}

/**
 * Probes `<url>/health` (once, or until healthy with `--wait`), then `GET <url>/info`; builds
 * the report. Never throws for an unhealthy app (the report says so); rejects only when
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
  const healthUrl = `${cmd.url}/health`
  const probeOptions = {
    ...(cmd.apiKey !== undefined && { apiKey: cmd.apiKey }),
    headers: cmd.headers,
    requestTimeoutMs: Math.min(cmd.timeoutMs, 10_000),
    ...(signal !== undefined && { signal }),
  }
  let healthy: boolean
  let status: number | undefined
  let elapsedMs: number
  let error: string | undefined
  if (cmd.wait) {
    const started = performance.now()
    try {
      const result = await waitForHealthy(healthUrl, { ...probeOptions, timeoutMs: cmd.timeoutMs })
      healthy = true
      status = result.status
      elapsedMs = result.elapsedMs
    } catch (err) {
      if (signal?.aborted) throw signal.reason
      healthy = false
      status = err instanceof HealthCheckError ? err.last?.status : undefined
      elapsedMs = performance.now() - started
      error = renderError(err, { command: 'check' }).message // in flag words: --timeout, not timeoutMs
    }
  } else {
    const result = await checkHealth(healthUrl, probeOptions)
    healthy = result.healthy
    status = result.status
    elapsedMs = result.elapsedMs
    error = result.healthy
      ? undefined
      : (result.error ??
        `/health answered HTTP ${result.status ?? '?'}${result.unauthorized ? ' (the API key was refused)' : ''}`)
  }
  let info: unknown = null
  let infoStatus: number | undefined
  if (healthy) {
    const read = await readInfo(cmd, combined)
    info = read.info
    infoStatus = read.status
    if (read.error !== undefined) error = read.error
  }
  return {
    url: cmd.url,
    healthy,
    status,
    elapsedMs: Math.round(elapsedMs * 10) / 10,
    error,
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
