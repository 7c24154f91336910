/**
 * `taskapp optimize <config.toml> --app <file>`: `runInProcessJob` from the command line, with a
 * progress view, the final table, and Ctrl+C that cancels the job on the backend before stopping.
 */
import { resolve } from 'node:path'
import type { TunnelSpec } from '@taskapp/in-process'
import { isTaskappError } from '@taskapp/core'
import { runInProcessJob } from '../run-in-process-job'
import type { InProcessJobResult } from '../run-job-options'
import type { CliEnv, OptimizeCommand } from './args'
import { usage } from './flag-table'
import { createCliLogger, type CliIo } from './output'
import { OptimizeView } from './optimize-view'
import type { ServeProcess } from './serve'
import { EXIT_ON_SIGNAL, watchStopSignals, type StopSignal } from './stop-signals'

/** How long Ctrl+C waits for the backend to report the job cancelled before stopping anyway. */
const CANCEL_WAIT_MS = 10_000

/** The task app's tunnel: a relay when one is named, the given mode, else `runInProcessJob`'s default. */
function tunnelOf(cmd: OptimizeCommand): TunnelSpec | undefined {
  if (cmd.relayUrl !== undefined) {
    return {
      mode: 'synthtunnel',
      relayUrl: cmd.relayUrl,
      ...(cmd.relayApiKey !== undefined && { relayApiKey: cmd.relayApiKey }),
    }
  }
  if (cmd.tunnelMode === 'local' || cmd.tunnelMode === 'quick') return { mode: cmd.tunnelMode }
  return undefined // synthtunnel on the backend (or local for a backend on this machine)
}

/** A job-config or option error in the words of the command line (exit 2). */
function inFlagWords(cmd: OptimizeCommand, message: string): Error {
  const words = message
    .replace(/^runInProcessJob: /, '')
    .replace(/configPath "[^"]*"/g, `<config.toml> ${cmd.config}`)
    .replace(/configPath: cannot read/g, '<config.toml>: cannot read')
    .replace(/\boverrides\.(?!task_url)([\w.]+)/g, '--override $1')
    .replace(
      /pass backend\.apiKey or set SYNTH_API_KEY/,
      'set SYNTH_API_KEY or give --backend-api-key-file <path>',
    )
  return usage('optimize', words)
}

/** SIGINT/SIGTERM: the first aborts the run (the job is cancelled first), a second exits at once. */
function watchSignals(io: CliIo, proc: ServeProcess, view: OptimizeView, controller: AbortController) {
  return watchStopSignals(proc, {
    onFirst: (sig) => {
      view.note(`… ${sig}: cancelling the job, then stopping the task app (again to exit at once)`)
      controller.abort(new Error(`taskapp optimize: ${sig}`))
    },
    onAgain: (sig) => void io.stderr.write(`\ntaskapp optimize: ${sig} again, exiting without waiting\n`),
  })
}

/** The exit status of a finished run, after printing what went wrong. */
function finished(out: InProcessJobResult, io: CliIo, view: OptimizeView): number {
  view.result(out)
  if (out.status === 'succeeded') return 0
  io.stderr.write(
    `taskapp optimize: job ${out.jobId} ${out.status}${out.result?.error ? `: ${out.result.error}` : ''}\n`,
  )
  return 1
}

/**
 * The exit status of a run that threw, after printing why: 130/143 after a signal, 1 for a run
 * that failed; a bad job config or option is rethrown as a usage error (exit 2) in flag words.
 */
function failed(
  cmd: OptimizeCommand,
  io: CliIo,
  view: OptimizeView,
  err: unknown,
  sig: StopSignal | undefined,
): number {
  if (sig !== undefined) {
    view.error(
      'TASKAPP_ERR_INTERRUPTED',
      `${sig}: the job was cancelled and the task app stopped`,
      EXIT_ON_SIGNAL[sig],
    )
    view.note(`✓ stopped (${sig})`)
    return EXIT_ON_SIGNAL[sig]
  }
  const e = err as { code?: string; message?: string; cause?: { message?: string } }
  if (
    isTaskappError(err, 'TASKAPP_ERR_JOBS_INVALID_CONFIG') ||
    isTaskappError(err, 'TASKAPP_ERR_INVALID_JOB_OPTIONS')
  ) {
    view.error(e.code, e.message ?? String(err), 2)
    throw inFlagWords(cmd, e.message ?? String(err))
  }
  if (isTaskappError(err, 'TASKAPP_ERR_JOB_TASK_APP_AUTH')) {
    const message =
      `the task app (${cmd.app}) wants an API key, and a job carries only the tunnel's worker token. ` +
      "Trust the backend's container-token key instead: --container-keys <key> (or SYNTH_CONTAINER_TRUSTED_PUBKEYS; " +
      '`taskapp dev-backend --generate-signing-key` prints it), or reach the app through a relay, whose agent ' +
      'adds the key: --relay-url <url> (`taskapp relay`).'
    view.error(e.code, message, 1)
    io.stderr.write(`taskapp optimize: [${e.code}] ${message}\n`)
    return 1
  }
  // The library's words for the backend URL are the command line's --backend here.
  const message = (e.message ?? String(err)).replace(/\bbackendUrl\b/g, '--backend')
  view.error(e.code, message, 1)
  io.stderr.write(
    `taskapp optimize: ${e.code ? `[${e.code}] ` : ''}${message}` +
      `${e.cause?.message ? `\n  cause: ${e.cause.message}` : ''}\n`,
  )
  return 1
}

/**
 * Runs `taskapp optimize`; resolves to the exit status: 0 the job succeeded, 1 it failed (or the
 * task app could not start, the backend refused, the timeout passed), 2 a bad job config, 130/143
 * after SIGINT/SIGTERM (the job cancelled on the backend first).
 *
 * @example
 * ```ts
 * process.exitCode = await runOptimize(cmd, { stdout: process.stdout, stderr: process.stderr }, process, process.env)
 * ```
 */
export async function runOptimize(
  cmd: OptimizeCommand,
  io: CliIo,
  proc: ServeProcess,
  env: CliEnv,
): Promise<number> {
  if (cmd.backendApiKey === undefined) {
    throw usage(
      'optimize',
      'no Synth API key: set SYNTH_API_KEY or give --backend-api-key-file <path> (for `taskapp dev-backend`, one of its --api-key values, or the key it printed).',
    )
  }
  const quiet = cmd.logLevel === 'error' || cmd.logLevel === 'silent'
  const view = new OptimizeView(io, { json: cmd.json, progress: !quiet })
  const controller = new AbortController()
  const signals = watchSignals(io, proc, view, controller)
  const tunnel = tunnelOf(cmd)
  try {
    const out = await runInProcessJob({
      configPath: cmd.config,
      backend: { ...(cmd.backendUrl !== undefined && { url: cmd.backendUrl }), apiKey: cmd.backendApiKey },
      overrides: { ...cmd.overrides },
      timeoutMs: cmd.timeoutMs,
      cancelTimeoutMs: CANCEL_WAIT_MS,
      handleSignals: false,
      signal: controller.signal,
      env,
      onStatus: (update) => view.update(update),
      taskApp: {
        taskAppPath: resolve(cmd.app),
        port: cmd.port,
        logger: createCliLogger(cmd.logLevel, io),
        ...(tunnel !== undefined && { tunnel }),
        ...(cmd.containerKeys !== undefined && { containerAuth: { trustedKeys: cmd.containerKeys } }),
      },
    })
    return finished(out, io, view)
  } catch (err) {
    return failed(cmd, io, view, err, signals.received())
  } finally {
    view.close()
    signals.dispose()
  }
}
