/**
 * Quick and named Cloudflare tunnels: the public options and handle, and `open()`, which puts the
 * parts together. The parts live in `./cloudflared/`: `binary.ts` (which cloudflared), `args.ts`
 * (command line, environment, config), `readiness.ts` (log lines and the metrics server), and
 * `failures.ts` (the errors); `supervised-process.ts` runs the process under a watchdog.
 */
import { CloudflareTunnelError } from './errors'
import type { InstallCloudflaredOptions } from './install'
import { redactor } from './log-parser'
import { trackChild } from './registry'
import { spawnSupervised } from './supervised-process'
import type { SupervisedProcess } from './supervised-process'
import type { OpenTunnel, TunnelBackend, TunnelLogger, TunnelTarget } from './types'
import { prepareInvocation } from './cloudflared/args'
import type { CloudflaredInvocation } from './cloudflared/args'
import { resolveBinary } from './cloudflared/binary'
import { exitError, rateLimitError, timeoutError } from './cloudflared/failures'
import { parentDeathWrapper, wrapperCommand } from './cloudflared/pdeathsig'
import { recordChild, sweepOrphans } from './cloudflared/pid-records'
import { ReadinessWatch } from './cloudflared/readiness'

/**
 * Options shared by quick and named tunnels.
 *
 * @example
 * ```ts
 * const options: CloudflareTunnelOptions = { cloudflaredPath: '/usr/local/bin/cloudflared', timeoutMs: 45_000, logger }
 * ```
 */
export interface CloudflareTunnelOptions {
  /** Path of the cloudflared binary; when set it must exist (no search). @default searched: CLOUDFLARED_PATH, PATH, install cache */
  readonly cloudflaredPath?: string
  /**
   * Download a checksum-verified cloudflared into the cache when none is found: `true`, or the
   * options for {@link installCloudflared} (version, baseUrl, sha256, ...). @default false
   */
  readonly install?: boolean | Omit<InstallCloudflaredOptions, 'dir' | 'signal'>
  /** Install cache root (searched, and used by `install: true`). @default defaultInstallDir() */
  readonly installDir?: string
  /** Deadline for cloudflared to print the URL and register a connection, in ms. @default 30000 */
  readonly timeoutMs?: number
  /** Time between SIGTERM and SIGKILL when stopping cloudflared, in ms. @default 5000 */
  readonly killGraceMs?: number
  /** Receives cloudflared's output at DEBUG (secrets redacted) and an unexpected exit at WARN. @default no-op */
  readonly logger?: TunnelLogger
  /** Environment for cloudflared (also read for CLOUDFLARED_PATH and PATH). @default process.env */
  readonly env?: NodeJS.ProcessEnv
  /** Extra flags for `cloudflared tunnel`, e.g. `['--protocol', 'http2']`. @default [] */
  readonly extraArgs?: readonly string[]
}

/**
 * Options of {@link cloudflareNamedTunnel}.
 *
 * @example
 * ```ts
 * const options: CloudflareNamedTunnelOptions = { token: process.env.CF_TUNNEL_TOKEN!, hostname: 'app.example.com' }
 * ```
 */
export interface CloudflareNamedTunnelOptions extends CloudflareTunnelOptions {
  /** The tunnel token from the Cloudflare dashboard. Passed as `TUNNEL_TOKEN`, never on the command line. */
  readonly token: string
  /** Public hostname routed to this tunnel (configured on Cloudflare's side), e.g. `app.example.com`. */
  readonly hostname: string
}

/**
 * A running Cloudflare tunnel.
 *
 * @example
 * ```ts
 * await using tunnel: CloudflareTunnel = await cloudflareQuickTunnel().open(target)
 * void tunnel.closed.then(() => console.log(tunnel.exitError?.message ?? 'closed'))
 * ```
 */
export interface CloudflareTunnel extends OpenTunnel {
  /** PID of the cloudflared process. */
  readonly pid: number
  /** Base URL of cloudflared's metrics server (`/ready`, `/metrics`), on 127.0.0.1. */
  readonly metricsUrl: string
  /** Set when cloudflared exited on its own (not through `close()`). */
  readonly exitError: CloudflareTunnelError | undefined
  /** How cloudflared ended (`{ code, signal }`), once it has. */
  readonly exitStatus: { readonly code: number | null; readonly signal: string | null } | undefined
  /** The last lines cloudflared printed (secrets redacted). */
  recentOutput(): string[]
}

/**
 * A {@link TunnelBackend} whose `open()` resolves a {@link CloudflareTunnel}.
 *
 * @example
 * ```ts
 * const backend: CloudflareTunnelBackend = cloudflareQuickTunnel()
 * ```
 */
export interface CloudflareTunnelBackend extends TunnelBackend {
  /** `cloudflare-quick` or `cloudflare-named`. */
  readonly name: string
  /** Starts cloudflared and resolves once the tunnel is ready; rejects with `signal.reason` when aborted. */
  open(target: TunnelTarget, options?: { signal?: AbortSignal }): Promise<CloudflareTunnel>
}

const noop = () => {}
const NOOP_LOGGER: TunnelLogger = { debug: noop, info: noop, warn: noop, error: noop }
const MAX_LINES = 100

function invalid(message: string): CloudflareTunnelError {
  return new CloudflareTunnelError('TASKAPP_ERR_INVALID_OPTIONS', message)
}

function checkCommon(options: CloudflareTunnelOptions): void {
  const { timeoutMs, killGraceMs } = options
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw invalid(`timeoutMs must be a positive number of milliseconds, got ${String(timeoutMs)}.`)
  }
  if (killGraceMs !== undefined && !(Number.isFinite(killGraceMs) && killGraceMs >= 0)) {
    throw invalid(`killGraceMs must be a number of milliseconds >= 0, got ${String(killGraceMs)}.`)
  }
  if (
    options.cloudflaredPath !== undefined &&
    (typeof options.cloudflaredPath !== 'string' || options.cloudflaredPath === '')
  ) {
    throw invalid('cloudflaredPath must be a non-empty string (the path of the cloudflared binary).')
  }
}

function normalizeHostname(hostname: unknown): string {
  if (typeof hostname !== 'string' || hostname.trim() === '') {
    throw invalid(
      'cloudflareNamedTunnel: hostname is required (the public hostname routed to the tunnel, e.g. app.example.com).',
    )
  }
  let url: URL
  try {
    url = new URL(hostname.includes('://') ? hostname : `https://${hostname.trim()}`)
  } catch {
    throw invalid(`cloudflareNamedTunnel: hostname ${JSON.stringify(hostname)} is not a valid hostname.`)
  }
  if (url.pathname !== '/' || url.search !== '' || url.username !== '') {
    throw invalid(
      `cloudflareNamedTunnel: hostname must be a bare hostname like app.example.com, got ${JSON.stringify(hostname)}.`,
    )
  }
  return url.host
}

function checkTarget(target: TunnelTarget): URL {
  try {
    const localUrl = new URL(target.localUrl)
    if (localUrl.protocol !== 'http:' && localUrl.protocol !== 'https:') throw new Error('not http(s)')
    return localUrl
  } catch (err) {
    throw new CloudflareTunnelError(
      'TASKAPP_ERR_INVALID_OPTIONS',
      `open(): target.localUrl must be an http(s) URL like http://127.0.0.1:8114, got ${JSON.stringify(target.localUrl)}.`,
      { cause: err },
    )
  }
}

type Kind = 'quick' | 'named'

interface Spec {
  readonly kind: Kind
  readonly options: CloudflareTunnelOptions
  readonly token?: string
  readonly hostname?: string
}

/** One cloudflared run: the process, what it printed, and how far its start-up got. */
interface Run {
  readonly spec: Spec
  readonly file: string
  readonly proc: SupervisedProcess
  readonly watch: ReadinessWatch
  readonly lines: string[]
  readonly invocation: CloudflaredInvocation
  readonly logger: TunnelLogger
  readonly killGraceMs: number
  /** Settles once the PID record is written (see `cloudflared/pid-records.ts`). */
  readonly recorded: Promise<void>
}

/**
 * Starts cloudflared under the watchdog (through `setpriv` when given); every output line is
 * redacted, kept, logged and watched, and a PID record is written.
 */
function startRun(
  spec: Spec,
  file: string,
  invocation: CloudflaredInvocation,
  setpriv: string | undefined,
): Run {
  const { kind, options } = spec
  const logger = options.logger ?? NOOP_LOGGER
  const killGraceMs = options.killGraceMs ?? 5_000
  const redact = redactor([spec.token])
  const watch = new ReadinessWatch(kind === 'named' ? `https://${spec.hostname ?? ''}` : undefined)
  const lines: string[] = []
  let pid: number | undefined
  const proc = spawnSupervised({
    file,
    args: invocation.args,
    env: invocation.env,
    killGraceMs,
    wrapper: setpriv === undefined ? undefined : wrapperCommand(setpriv),
    onLine: (raw) => {
      const line = redact(raw)
      lines.push(line)
      if (lines.length > MAX_LINES) lines.shift()
      logger.debug({ pid, tunnel: kind }, `cloudflared: ${line}`)
      watch.observe(raw)
    },
  })
  trackChild(proc)
  proc.spawned.then(
    (p) => (pid = p),
    () => {},
  )
  const recorded = recordChild(proc, [file, ...invocation.args], options.env ?? process.env, logger)
  return { spec, file, proc, watch, lines, invocation, logger, killGraceMs, recorded }
}

/** The {@link CloudflareTunnel} handle of a run that became ready. */
async function tunnelHandle(run: Run): Promise<CloudflareTunnel> {
  const { proc, watch, lines, logger, killGraceMs } = run
  const publicUrl = watch.progress.url ?? ''
  const metricsUrl = watch.progress.metricsUrl ?? ''
  const cloudflaredPid = proc.pid ?? (await proc.spawned)
  let closing = false
  let exitErr: CloudflareTunnelError | undefined
  const closed: Promise<void> = proc.exited.then(async (status) => {
    if (!closing) {
      exitErr = exitError(status, run.file, watch.progress, lines)
      logger.warn(
        { pid: cloudflaredPid, url: publicUrl, code: status.code, signal: status.signal },
        exitErr.message,
      )
    }
    await run.invocation.cleanup().catch(noop)
  })
  let closePromise: Promise<void> | undefined
  const close = (): Promise<void> => {
    if (proc.status === undefined) closing = true
    closePromise ??= proc.stop(killGraceMs).then(() => closed)
    return closePromise
  }
  logger.debug({ pid: cloudflaredPid, url: publicUrl, metricsUrl }, 'cloudflare tunnel ready')
  return {
    url: publicUrl,
    pid: cloudflaredPid,
    metricsUrl,
    get exitError() {
      return exitErr
    },
    get exitStatus() {
      const status = proc.status
      return status === undefined ? undefined : { code: status.code, signal: status.signal }
    },
    closed,
    close,
    recentOutput: () => [...lines],
    [Symbol.asyncDispose]: close,
  }
}

/** Finds (or installs) cloudflared, starts it, and resolves once the tunnel is ready. */
async function openTunnel(
  spec: Spec,
  target: TunnelTarget,
  signal: AbortSignal | undefined,
): Promise<CloudflareTunnel> {
  signal?.throwIfAborted()
  const { options } = spec
  const localUrl = checkTarget(target)
  const env = options.env ?? process.env
  const logger = options.logger ?? NOOP_LOGGER
  const setpriv = await parentDeathWrapper(env, logger)
  const file = await resolveBinary(options, signal, logger)
  signal?.throwIfAborted()
  await sweepOrphans(env, logger)
  const invocation = await prepareInvocation(
    { kind: spec.kind, token: spec.token, extraArgs: options.extraArgs, env: options.env },
    localUrl.origin,
  )
  const run = startRun(spec, file, invocation, setpriv)
  const { proc, watch, lines } = run
  const outcome = await watch.wait({
    exited: proc.exited,
    timeoutMs: options.timeoutMs ?? 30_000,
    signal,
    errors: {
      exited: (status) => exitError(status, file, watch.progress, lines),
      rateLimited: () => rateLimitError(lines),
      timedOut: () => timeoutError(watch.progress, options.timeoutMs ?? 30_000, lines),
    },
  })
  if (!outcome.ok) {
    await proc.stop(run.killGraceMs)
    await invocation.cleanup()
    throw outcome.error
  }
  await run.recorded
  return tunnelHandle(run)
}

/**
 * A Cloudflare quick tunnel (`https://<words>.trycloudflare.com`, no account needed). Each
 * `open()` runs `cloudflared tunnel --no-autoupdate --config <{}> --url <localUrl> --metrics
 * 127.0.0.1:0` (cloudflared picks the metrics port and logs it) and resolves once the URL is
 * printed, a connection is registered and the metrics address is known.
 *
 * @example
 * ```ts
 * await using tunnel = await cloudflareQuickTunnel({ timeoutMs: 30_000 }).open({
 *   localUrl: 'http://127.0.0.1:8114', port: 8114, host: '127.0.0.1',
 * })
 * console.log(tunnel.url) // https://buffalo-marco-cardiff-motel.trycloudflare.com
 * ```
 */
export function cloudflareQuickTunnel(options: CloudflareTunnelOptions = {}): CloudflareTunnelBackend {
  checkCommon(options)
  const spec: Spec = { kind: 'quick', options: { ...options } }
  return {
    name: 'cloudflare-quick',
    open: (target, openOptions) => openTunnel(spec, target, openOptions?.signal),
  }
}

/**
 * A Cloudflare named tunnel run from a dashboard token: `cloudflared tunnel --no-autoupdate
 * --metrics 127.0.0.1:0 run` with the token in `TUNNEL_TOKEN` (never in argv). The
 * URL is `https://<hostname>`; the hostname → local service route lives on Cloudflare's side.
 *
 * @example
 * ```ts
 * const backend = cloudflareNamedTunnel({ token: process.env.CF_TUNNEL_TOKEN!, hostname: 'app.example.com' })
 * await using tunnel = await backend.open({ localUrl: 'http://127.0.0.1:8114', port: 8114, host: '127.0.0.1' })
 * ```
 */
export function cloudflareNamedTunnel(options: CloudflareNamedTunnelOptions): CloudflareTunnelBackend {
  if (typeof options !== 'object' || (options as unknown) === null) {
    throw invalid('cloudflareNamedTunnel needs { token, hostname }.')
  }
  if (typeof options.token !== 'string' || options.token.trim() === '') {
    throw invalid(
      'cloudflareNamedTunnel: token is required (the tunnel token from the Cloudflare dashboard).',
    )
  }
  const hostname = normalizeHostname(options.hostname)
  checkCommon(options)
  const spec: Spec = { kind: 'named', options: { ...options }, token: options.token.trim(), hostname }
  return {
    name: 'cloudflare-named',
    open: (target, openOptions) => openTunnel(spec, target, openOptions?.signal),
  }
}
