/**
 * `taskapp serve <file>`: start a task app file with `InProcessTaskApp`, print its URL and the
 * headers a caller needs, run until SIGINT/SIGTERM, then stop cleanly.
 */
import { resolve } from 'node:path'
import { InProcessTaskApp, type InProcessTaskAppOptions, type TunnelSpec } from '@taskapp/in-process'
import type { ServeCommand } from './args'
import { createCliLogger, Progress, redactSecret, type CliIo } from './output'

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
  /** Where the task app key came from: `flag`/`env` (you have it), `generated` (in `headers`), `none`. */
  readonly apiKeySource: 'flag' | 'env' | 'generated' | 'none'
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
  const logger = createCliLogger(cmd.logLevel, io)
  const progress = new Progress(io, cmd.logLevel !== 'silent' && cmd.logLevel !== 'error')
  const stopper = new AbortController()
  let received: 'SIGINT' | 'SIGTERM' | undefined
  let running = false
  let stopped!: () => void
  const stopRequested = new Promise<void>((r) => {
    stopped = r
  })
  const onSignal = (sig: 'SIGINT' | 'SIGTERM') => () => {
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

  const couldNotStart = (err: unknown): number => {
    const e = err as { code?: string; message?: string; cause?: { message?: string } }
    io.stderr.write(
      `taskapp serve: could not start ${cmd.file}${e.code ? ` [${e.code}]` : ''}: ${e.message ?? String(err)}` +
        `${e.cause?.message ? `\n  cause: ${e.cause.message}` : ''}\n`,
    )
    return 1
  }
  let app: InProcessTaskApp | undefined
  try {
    try {
      // The constructor validates every option (and that the file exists) before anything starts.
      app = new InProcessTaskApp({ ...serveOptions(cmd, logger), signal: stopper.signal })
    } catch (err) {
      return couldNotStart(err)
    }
    app.on('tunnel-lost', (event) => {
      logger.warn(
        { url: event.url, tunnel: event.tunnel, err: event.error },
        'the tunnel closed on its own; the local server still runs (Ctrl+C to stop)',
      )
    })
    app.on('error', (err: unknown) => {
      logger.error({ err }, 'task app error')
    })
    progress.step(`starting ${cmd.file} (${cmd.tunnel.mode} tunnel)`)
    try {
      await app.start()
    } catch (err) {
      if (received !== undefined) {
        progress.done()
        return EXIT_ON_SIGNAL[received]
      }
      progress.fail(err instanceof Error ? err.message : String(err))
      return couldNotStart(err)
    }
    running = true
    progress.done(app.url)
    const headers: Record<string, string> = { ...(app.headers ?? {}) }
    const source = apiKeySource(cmd, app.apiKey)
    if (source === 'generated' && app.apiKey !== undefined) headers['X-API-Key'] = app.apiKey
    const report: ServeReport = {
      url: app.url,
      localUrl: app.localUrl,
      port: app.port,
      tunnelMode: cmd.tunnel.mode,
      tunnel: publicTunnel(cmd.tunnel),
      headers,
      apiKeySource: source,
    }
    if (cmd.json) {
      io.stdout.write(`${JSON.stringify(report)}\n`)
    } else {
      const lines = [
        `taskapp: serving ${cmd.file}`,
        `  url:    ${report.url}`,
        `  local:  ${report.localUrl}`,
      ]
      for (const [name, value] of Object.entries(headers)) lines.push(`  header: ${name}: ${value}`)
      if (source === 'flag' || source === 'env') {
        lines.push(`  header: X-API-Key: <your task app key, ${redactSecret(cmd.apiKey)}>`)
      }
      lines.push('Press Ctrl+C to stop.')
      io.stdout.write(`${lines.join('\n')}\n`)
    }
    await stopRequested
    await app.stop()
    progress.done()
    return received === undefined ? 0 : EXIT_ON_SIGNAL[received]
  } finally {
    proc.off('SIGINT', onInt)
    proc.off('SIGTERM', onTerm)
    if (app !== undefined && app.state !== 'stopped' && app.state !== 'idle' && app.state !== 'failed') {
      await app.stop().catch(() => undefined)
    }
  }
}
