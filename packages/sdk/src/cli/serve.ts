/**
 * `taskapp serve <file>`: start a task app file with `InProcessTaskApp`, print its URL and the
 * headers a caller needs, run until SIGINT/SIGTERM, then stop cleanly.
 */
import { resolve } from 'node:path'
import { InProcessTaskApp, type InProcessTaskAppOptions, type TunnelSpec } from '@taskapp/in-process'
import type { ServeCommand } from './args'
import { createCliLogger, Progress, redactSecret, type CliIo, type CliLogger } from './output'
import { StatusLine } from './status-line'

/** What `taskapp serve --json` prints once the app is running. */
export interface ServeReport {
  readonly url: string
  readonly localUrl: string
  readonly port: number
  /** The tunnel's mode (same as `tunnel.mode`). */
  readonly tunnelMode: string
  /** The tunnel spec without its secrets (`relayApiKey`, `token`, ...): `{ mode: 'local' }`, `{ mode: 'synthtunnel', relayUrl }`, ... */
  readonly tunnel: Readonly<Record<string, unknown>> & { readonly mode: string }
  /** Headers a caller of `url` must send: the tunnel's (e.g. worker token) and, when generated here, `X-API-Key`. */
  readonly headers: Readonly<Record<string, string>>
  /** Where the task app key came from: `flag`/`file`/`env` (you have it), `generated` (in `headers`), `none`. */
  readonly apiKeySource: 'flag' | 'file' | 'env' | 'generated' | 'none'
  /**
   * True when the app verifies Synth container tokens (`X-Synth-Container-Authorization`): a
   * caller needs one signed by a trusted key. Synth's backend signs its own for each call, so
   * none is listed in `headers`.
   */
  readonly containerTokens: boolean
}

/** Process hooks `runServe` needs (the real `process` by default; tests may pass their own). */
export interface ServeProcess {
  on(event: 'SIGINT' | 'SIGTERM', listener: () => void): unknown
  off(event: 'SIGINT' | 'SIGTERM', listener: () => void): unknown
  /** Ends the process at once (a second signal while stopping). */
  exit(code: number): void
}

const EXIT_ON_SIGNAL = { SIGINT: 130, SIGTERM: 143 } as const

/**
 * Maps the parsed command to `InProcessTaskApp` options; the tunnel goes as the parsed
 * `tunnel` spec (`{ mode: 'synthtunnel', relayUrl, relayApiKey }`, `{ mode: 'local' }`, ...).
 *
 * @example
 * ```ts
 * new InProcessTaskApp(serveOptions(parseCommand(['serve', 'app.ts']) as ServeCommand))
 * ```
 */
export function serveOptions(
  cmd: ServeCommand,
  logger?: InProcessTaskAppOptions['logger'],
): InProcessTaskAppOptions {
  return {
    taskAppPath: resolve(cmd.file),
    port: cmd.port,
    host: cmd.host,
    allowNonLoopback: cmd.allowNonLoopback,
    tunnel: cmd.tunnel,
    onPortConflict: cmd.onPortConflict,
    verifyTunnel: cmd.verifyTunnel,
    handleSignals: false,
    ...(logger !== undefined && { logger }),
    ...(cmd.apiKey !== undefined && { apiKey: cmd.apiKey }),
    ...(cmd.containerAuthFrom === 'flag' && {
      containerAuth: {
        ...(cmd.containerKeys !== undefined && { trustedKeys: cmd.containerKeys }),
        ...(cmd.containerAuthMode !== undefined && { mode: cmd.containerAuthMode }),
        ...(cmd.containerIssuer !== undefined && { issuer: cmd.containerIssuer }),
      },
    }),
  }
}

/** The tunnel spec as printed: keys that hold a secret (`relayApiKey`, `token`, `authToken`) left out. */
export function publicTunnel(spec: TunnelSpec): ServeReport['tunnel'] {
  return Object.fromEntries(
    Object.entries(spec).filter(([key]) => !/key|token/i.test(key)),
  ) as ServeReport['tunnel']
}

function apiKeySource(cmd: ServeCommand, appKey: string | undefined): ServeReport['apiKeySource'] {
  if (appKey === undefined) return 'none'
  return cmd.apiKeyFrom ?? 'generated'
}

type StopSignal = 'SIGINT' | 'SIGTERM'

/** The SIGINT/SIGTERM handling of one `runServe` call. */
interface SignalWatch {
  /** The first signal received, if any. */
  received(): StopSignal | undefined
  /** Settles at the first signal. */
  readonly stopRequested: Promise<void>
  /** Aborted at the first signal (cancels a start in progress). */
  readonly signal: AbortSignal
  /** Records that the app has started (a signal no longer interrupts the start). */
  markRunning(): void
  /** Removes the signal listeners. */
  dispose(): void
}

/** Listens for SIGINT/SIGTERM: the first one requests a stop, a second one exits at once. */
function watchSignals(io: CliIo, proc: ServeProcess, progress: Progress): SignalWatch {
  const stopper = new AbortController()
  let received: StopSignal | undefined
  let running = false
  let stopped!: () => void
  const stopRequested = new Promise<void>((r) => {
    stopped = r
  })
  const onSignal = (sig: StopSignal) => () => {
    if (received !== undefined) {
      io.stderr.write(`\ntaskapp: ${sig} again, exiting without waiting\n`)
      proc.exit(EXIT_ON_SIGNAL[sig])
      return
    }
    received = sig
    if (!running) progress.fail(`interrupted by ${sig}`)
    progress.step(`stopping (${sig})`)
    stopper.abort(new Error(`taskapp serve: ${sig}`))
    stopped()
  }
  const onInt = onSignal('SIGINT')
  const onTerm = onSignal('SIGTERM')
  proc.on('SIGINT', onInt)
  proc.on('SIGTERM', onTerm)
  return {
    received: () => received,
    stopRequested,
    signal: stopper.signal,
    markRunning: () => {
      running = true
    },
    dispose: () => {
      proc.off('SIGINT', onInt)
      proc.off('SIGTERM', onTerm)
    },
  }
}

/** Prints why `cmd.file` could not start and returns exit status 1. */
function couldNotStart(cmd: ServeCommand, io: CliIo, err: unknown): number {
  const e = err as { code?: string; message?: string; cause?: { message?: string } }
  io.stderr.write(
    `taskapp serve: could not start ${cmd.file}${e.code ? ` [${e.code}]` : ''}: ${e.message ?? String(err)}` +
      `${e.cause?.message ? `\n  cause: ${e.cause.message}` : ''}\n`,
  )
  return 1
}

/** Logs the app's `tunnel-lost` and `error` events. */
function logAppEvents(app: InProcessTaskApp, logger: CliLogger): void {
  app.on('tunnel-lost', (event) => {
    logger.warn(
      { url: event.url, tunnel: event.tunnel, err: event.error },
      'the tunnel closed on its own; the local server still runs (Ctrl+C to stop)',
    )
  })
  app.on('error', (err: unknown) => {
    logger.error({ err }, 'task app error')
  })
}

/** The {@link ServeReport} of a started app (with `X-API-Key` when the key was generated here). */
function serveReport(cmd: ServeCommand, app: InProcessTaskApp): ServeReport {
  const headers: Record<string, string> = { ...(app.headers ?? {}) }
  const source = apiKeySource(cmd, app.apiKey)
  if (source === 'generated' && app.apiKey !== undefined) headers['X-API-Key'] = app.apiKey
  return {
    url: app.url,
    localUrl: app.localUrl,
    port: app.port,
    tunnelMode: cmd.tunnel.mode,
    tunnel: publicTunnel(cmd.tunnel),
    headers,
    apiKeySource: source,
    containerTokens: app.containerTokens,
  }
}

/** Prints the report: one JSON line with `--json`, else the URL and header lines. */
function printReport(cmd: ServeCommand, io: CliIo, report: ServeReport): void {
  if (cmd.json) {
    io.stdout.write(`${JSON.stringify(report)}\n`)
    return
  }
  const lines = [`taskapp: serving ${cmd.file}`, `  url:    ${report.url}`, `  local:  ${report.localUrl}`]
  for (const [name, value] of Object.entries(report.headers)) lines.push(`  header: ${name}: ${value}`)
  if (report.apiKeySource === 'flag' || report.apiKeySource === 'file' || report.apiKeySource === 'env') {
    lines.push(`  header: X-API-Key: <your task app key, ${redactSecret(cmd.apiKey)}>`)
  }
  if (report.containerTokens) {
    lines.push(
      "  tokens: X-Synth-Container-Authorization: signed by Synth's backend for each call (none to hand over)",
    )
  }
  lines.push('Press Ctrl+C to stop.')
  io.stdout.write(`${lines.join('\n')}\n`)
}

/**
 * Runs `taskapp serve`: resolves to the exit status once the app has stopped (130 after
 * SIGINT, 143 after SIGTERM, 1 when it could not start). A second signal during the stop exits
 * at once.
 *
 * @example
 * ```ts
 * const status = await runServe(cmd, { stdout: process.stdout, stderr: process.stderr }, process)
 * process.exitCode = status
 * ```
 */
export async function runServe(cmd: ServeCommand, io: CliIo, proc: ServeProcess): Promise<number> {
  const shown = cmd.logLevel !== 'silent' && cmd.logLevel !== 'error'
  // On a TTY, the running count stays on stderr's last line; logs and progress write around it.
  const status = new StatusLine(io.stderr, { enabled: shown })
  const out: CliIo = { stdout: io.stdout, stderr: status.stream }
  const logger = createCliLogger(cmd.logLevel, out)
  const progress = new Progress(out, shown)
  const signals = watchSignals(io, proc, progress)
  let app: InProcessTaskApp | undefined
  try {
    try {
      // The constructor validates every option (and that the file exists) before anything starts.
      app = new InProcessTaskApp({ ...serveOptions(cmd, logger), signal: signals.signal })
    } catch (err) {
      return couldNotStart(cmd, io, err)
    }
    logAppEvents(app, logger)
    progress.step(`starting ${cmd.file} (${cmd.tunnel.mode} tunnel)`)
    try {
      await app.start()
    } catch (err) {
      const received = signals.received()
      if (received !== undefined) {
        progress.done()
        return EXIT_ON_SIGNAL[received]
      }
      progress.fail(err instanceof Error ? err.message : String(err))
      return couldNotStart(cmd, io, err)
    }
    signals.markRunning()
    progress.done(app.url)
    printReport(cmd, io, serveReport(cmd, app))
    const running = app
    status.start(() => running.stats())
    await signals.stopRequested
    status.stop()
    await app.stop()
    progress.done()
    const received = signals.received()
    return received === undefined ? 0 : EXIT_ON_SIGNAL[received]
  } finally {
    status.stop()
    signals.dispose()
    if (app !== undefined && app.state !== 'stopped' && app.state !== 'idle' && app.state !== 'failed') {
      await app.stop().catch(() => undefined)
    }
  }
}
