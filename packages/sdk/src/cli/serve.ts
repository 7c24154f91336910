/**
 * `taskapp serve <file>`: start a task app file with `InProcessTaskApp`, print its URL and the
 * headers a caller needs, run until SIGINT/SIGTERM, then stop cleanly.
 */
import { resolve } from 'node:path'
import { InProcessTaskApp, type InProcessTaskAppOptions, type TunnelSpec } from '@taskapp/in-process'
import type { ServeCommand } from './args'
import { usage } from './flag-table'
import { createCliLogger, Progress, redactSecret, type CliIo, type CliLogger } from './output'
import { describeOwner, formatRendered, renderError } from './render-error'
import { StatusLine } from './status-line'
import { EXIT_ON_SIGNAL, watchStopSignals, type StopProcess, type StopSignal } from './stop-signals'

/** What `taskapp serve --json` prints once the app is running. */
export interface ServeReport {
  readonly url: string
  readonly localUrl: string
  readonly port: number
  /** The tunnel's mode (same as `tunnel.mode`). */
  readonly tunnelMode: string
  /** The tunnel spec without its secrets (`relayApiKey`, `token`, ...): `{ mode: 'local' }`, `{ mode: 'synthtunnel', relayUrl }`, ... */
  readonly tunnel: Readonly<Record<string, unknown>> & { readonly mode: string }
  /**
   * `app.headers`: exactly what a caller of `url` must send (worker token, preconfigured auth
   * header, `X-API-Key` when the app wants a key the tunnel does not add), except a key you
   * gave, which is never echoed: its header is named in `withheldHeaders` instead.
   */
  readonly headers: Readonly<Record<string, string>>
  /** Headers a caller also needs whose value is the task app key you gave (`apiKeySource`): add it yourself. */
  readonly withheldHeaders: readonly string[]
  /**
   * Where the task app key came from: `flag`/`file`/`env`/`config` (the file's `apiKeys`: you
   * have it), `generated` (for this run: in `headers` when callers need it), `none`.
   */
  readonly apiKeySource: 'flag' | 'file' | 'env' | 'config' | 'generated' | 'none'
  /**
   * True when the app verifies Synth container tokens (`X-Synth-Container-Authorization`): a
   * caller needs one signed by a trusted key (or the key in `headers`, when one is listed).
   * Synth's backend signs its own for each call, so none is listed in `headers`.
   */
  readonly containerTokens: boolean
}

/** Process hooks `runServe` needs (the real `process` by default; tests may pass their own). */
export type ServeProcess = StopProcess

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

function apiKeySource(cmd: ServeCommand, app: InProcessTaskApp): ServeReport['apiKeySource'] {
  if (app.apiKey === undefined) return 'none'
  return cmd.apiKeyFrom ?? (app.apiKeyGenerated ? 'generated' : 'config')
}

/** How the printout names a key the user gave, instead of its value. */
const GIVEN_KEY: Record<'flag' | 'file' | 'env' | 'config', string> = {
  flag: 'the key you gave with --api-key',
  file: 'the key in --api-key-file',
  env: 'the key in ENVIRONMENT_API_KEY',
  config: "the key in your task app's apiKeys",
}

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
  let running = false
  const signals = watchStopSignals(proc, {
    onFirst: (sig) => {
      if (!running) progress.fail(`interrupted by ${sig}`)
      progress.step(`stopping (${sig})`)
      stopper.abort(new Error(`taskapp serve: ${sig}`))
    },
    onAgain: (sig) => void io.stderr.write(`\ntaskapp: ${sig} again, exiting without waiting\n`),
  })
  return {
    ...signals,
    signal: stopper.signal,
    markRunning: () => {
      running = true
    },
  }
}

/** The progress label of the start. */
function startLabel(cmd: ServeCommand): string {
  return `starting ${cmd.file} (${cmd.tunnel.mode} tunnel)`
}

/**
 * Prints why `cmd.file` could not start, once, in the CLI's words, and returns the exit status:
 * 2 for an option the flags set wrong, found before anything started (`taskapp serve: ...` and
 * the pointer to `--help`), else 1 with one `✗ starting ...: <why> [code]` line (and `cause:`
 * when it adds something).
 */
function couldNotStart(
  cmd: ServeCommand,
  io: CliIo,
  progress: Progress,
  err: unknown,
  when: 'before-start' | 'starting',
): number {
  const rendered = renderError(err, { command: 'serve', serve: cmd })
  if (rendered.usage && when === 'before-start') {
    io.stderr.write(`${usage('serve', rendered.message).message}\n`)
    return 2
  }
  progress.fail(formatRendered(rendered), { always: true, label: startLabel(cmd) })
  return 1
}

/**
 * Logs the app's `tunnel-lost` and `error` events, and shows a taken port it moved from or a
 * holder it stopped as a progress line (the INFO log line says it when INFO is on).
 */
function logAppEvents(app: InProcessTaskApp, logger: CliLogger, progress: Progress): void {
  app.on('port-conflict', (event) => {
    if (logger.isLevelEnabled('info')) return
    progress.note(
      event.policy === 'next'
        ? `port ${event.port} is taken by ${describeOwner(event.owner)}: serving on ${event.boundPort}`
        : `stopped ${describeOwner(event.owner)}, which held port ${event.port} (--on-port-conflict kill)`,
    )
  })
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

/**
 * The {@link ServeReport} of a started app: `app.headers`, with the value of a key the user gave
 * left out (its header named in `withheldHeaders`); a generated key is printed, nobody else has it.
 */
function serveReport(cmd: ServeCommand, app: InProcessTaskApp): ServeReport {
  const headers: Record<string, string> = {}
  const withheldHeaders: string[] = []
  for (const [name, value] of Object.entries(app.headers)) {
    if (value === app.apiKey && !app.apiKeyGenerated) withheldHeaders.push(name)
    else headers[name] = value
  }
  return {
    url: app.url,
    localUrl: app.localUrl,
    port: app.port,
    tunnelMode: cmd.tunnel.mode,
    tunnel: publicTunnel(cmd.tunnel),
    headers,
    withheldHeaders,
    apiKeySource: apiKeySource(cmd, app),
    containerTokens: app.containerTokens,
  }
}

/** The `header:` and `tokens:` lines: what a caller sends, a given key as a placeholder. */
function headerLines(report: ServeReport, apiKey: string | undefined): string[] {
  const lines = Object.entries(report.headers).map(([name, value]) => `  header: ${name}: ${value}`)
  const source = report.apiKeySource
  for (const name of report.withheldHeaders) {
    const given = source === 'generated' || source === 'none' ? 'the task app key' : GIVEN_KEY[source]
    lines.push(`  header: ${name}: <${given}, ${redactSecret(apiKey)}>`)
  }
  const keyListed =
    apiKey !== undefined &&
    (report.withheldHeaders.length > 0 || Object.values(report.headers).includes(apiKey))
  if (report.containerTokens) {
    lines.push(
      "  tokens: X-Synth-Container-Authorization: signed by Synth's backend for each call (none to hand over); " +
        (keyListed ? 'a caller without one sends the X-API-Key above' : 'needed besides the headers above'),
    )
  } else if (lines.length === 0) {
    lines.push('  header: (none needed)')
  }
  return lines
}

/** Prints the report: one JSON line with `--json`, else the URL and header lines. */
function printReport(cmd: ServeCommand, io: CliIo, report: ServeReport, apiKey: string | undefined): void {
  if (cmd.json) {
    io.stdout.write(`${JSON.stringify(report)}\n`)
    return
  }
  const lines = [`taskapp: serving ${cmd.file}`, `  url:    ${report.url}`, `  local:  ${report.localUrl}`]
  lines.push(...headerLines(report, apiKey), 'Press Ctrl+C to stop.')
  io.stdout.write(`${lines.join('\n')}\n`)
}

/**
 * Runs `taskapp serve`: resolves to the exit status once the app has stopped (130 after
 * SIGINT, 143 after SIGTERM, 1 when it could not start, 2 when a flag set an option wrong). A
 * second signal during the stop exits at once.
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
      return couldNotStart(cmd, io, progress, err, 'before-start')
    }
    logAppEvents(app, logger, progress)
    progress.step(startLabel(cmd))
    try {
      await app.start()
    } catch (err) {
      const received = signals.received()
      if (received !== undefined) {
        progress.done()
        return EXIT_ON_SIGNAL[received]
      }
      return couldNotStart(cmd, io, progress, err, 'starting')
    }
    signals.markRunning()
    progress.done(app.url)
    printReport(cmd, io, serveReport(cmd, app), app.apiKey)
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
