/** Quick and named Cloudflare tunnels: run cloudflared, read its log, wait until it is ready. */
import { request } from 'node:http'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CloudflareTunnelError, formatLines } from './errors.js'
import { cloudflaredNotFoundError, defaultInstallDir, findCloudflared } from './find-binary.js'
import { installCloudflared } from './install.js'
import type { InstallCloudflaredOptions } from './install.js'
import { parseCloudflaredLine, parseMetricsAddress, redactor } from './log-parser.js'
import { trackChild } from './registry.js'
import { spawnSupervised } from './supervised-process.js'
import type { SupervisedExit, SupervisedProcess } from './supervised-process.js'
import type { OpenTunnel, TunnelBackend, TunnelLogger, TunnelTarget } from './types.js'

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
const READY_POLL_MS = 250
/**
 * cloudflared binds its metrics server itself on a port the kernel picks, and logs the address it
 * got (`Starting metrics server on 127.0.0.1:<port>/metrics`), which is read from the log. Choosing
 * a free port here and handing it over would leave a window in which another process takes it.
 */
const METRICS_LISTEN = '127.0.0.1:0'

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

/** One GET on the loopback metrics server; resolves status and body, or undefined on any error. */
function probe(url: string, timeoutMs: number): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { agent: false, headers: { connection: 'close' }, timeout: timeoutMs },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c.length + body.length > 64_000 ? '' : c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        res.on('error', () => resolve(undefined))
      },
    )
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(undefined))
    req.end()
  })
}

/** The URL from the metrics server's `/quicktunnel` answer (`{"hostname":"<words>.trycloudflare.com"}`). */
function quickTunnelUrl(answer: { status: number; body: string } | undefined): string | undefined {
  if (answer?.status !== 200) return undefined
  try {
    const host = (JSON.parse(answer.body) as { hostname?: unknown }).hostname
    if (typeof host === 'string' && /^[a-z0-9-]+\.trycloudflare\.com$/i.test(host) && !/^api\./i.test(host)) {
      return `https://${host.toLowerCase()}`
    }
  } catch {
    // not JSON: ignore
  }
  return undefined
}

async function resolveBinary(
  options: CloudflareTunnelOptions,
  signal: AbortSignal | undefined,
  logger: TunnelLogger,
): Promise<string> {
  const env = options.env ?? process.env
  const installDir = options.installDir ?? defaultInstallDir(env)
  const found = await findCloudflared({ cloudflaredPath: options.cloudflaredPath, env, installDir })
  if (found !== undefined) return found.path
  const install = options.install
  if (install === undefined || install === false) throw cloudflaredNotFoundError(installDir)
  logger.info({ installDir }, 'cloudflared not found; installing a verified copy')
  const installed = await installCloudflared({
    ...(install === true ? {} : install),
    dir: installDir,
    signal,
  })
  logger.info(
    { path: installed.path, version: installed.version, sha256: installed.sha256 },
    'cloudflared installed',
  )
  return installed.path
}

function exitDescription(status: SupervisedExit): string {
  if (status.signal !== null) return `was killed by ${status.signal}`
  return `exited with code ${String(status.code)}`
}

type Kind = 'quick' | 'named'

interface Spec {
  readonly kind: Kind
  readonly options: CloudflareTunnelOptions
  readonly token?: string
  readonly hostname?: string
}

async function openTunnel(
  spec: Spec,
  target: TunnelTarget,
  userSignal: AbortSignal | undefined,
): Promise<CloudflareTunnel> {
  userSignal?.throwIfAborted()
  const { kind, options } = spec
  let localUrl: URL
  try {
    localUrl = new URL(target.localUrl)
    if (localUrl.protocol !== 'http:' && localUrl.protocol !== 'https:') throw new Error('not http(s)')
  } catch (err) {
    throw new CloudflareTunnelError(
      'TASKAPP_ERR_INVALID_OPTIONS',
      `open(): target.localUrl must be an http(s) URL like http://127.0.0.1:8114, got ${JSON.stringify(target.localUrl)}.`,
      { cause: err },
    )
  }
  const logger = options.logger ?? NOOP_LOGGER
  const timeoutMs = options.timeoutMs ?? 30_000
  const killGraceMs = options.killGraceMs ?? 5_000
  const redact = redactor([spec.token])

  const file = await resolveBinary(options, userSignal, logger)
  userSignal?.throwIfAborted()
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) }
  delete env.TUNNEL_TOKEN_FILE
  delete env.TUNNEL_TOKEN
  let configDir: string | undefined
  let args: string[]
  if (kind === 'quick') {
    // An explicit `{}` config stops a user's ~/.cloudflared/config.yml from taking over the quick tunnel.
    configDir = await mkdtemp(join(tmpdir(), 'taskapp-cloudflared-'))
    await writeFile(join(configDir, 'config.yml'), '{}\n')
    args = [
      'tunnel',
      '--no-autoupdate',
      '--config',
      join(configDir, 'config.yml'),
      ...(options.extraArgs ?? []),
    ]
    args.push('--url', localUrl.origin, '--metrics', METRICS_LISTEN)
  } else {
    env.TUNNEL_TOKEN = spec.token
    args = ['tunnel', '--no-autoupdate', '--metrics', METRICS_LISTEN, ...(options.extraArgs ?? []), 'run']
  }

  const lines: string[] = []
  let url = kind === 'named' ? `https://${spec.hostname ?? ''}` : undefined
  let registered = false
  let metricsUrl: string | undefined
  let rateLimited = false
  let tokenInvalid = false
  let check: () => void = noop
  let pid: number | undefined

  const proc: SupervisedProcess = spawnSupervised({
    file,
    args,
    env,
    killGraceMs,
    onLine: (raw) => {
      const line = redact(raw)
      lines.push(line)
      if (lines.length > MAX_LINES) lines.shift()
      logger.debug({ pid, tunnel: kind }, `cloudflared: ${line}`)
      const parsed = parseCloudflaredLine(raw)
      if (parsed.url !== undefined && url === undefined) url = parsed.url
      if (parsed.registered) registered = true
      if (parsed.rateLimited) rateLimited = true
      if (parsed.tokenInvalid) tokenInvalid = true
      const metricsAddress = metricsUrl === undefined ? parseMetricsAddress(raw) : undefined
      if (metricsAddress !== undefined) metricsUrl = `http://${metricsAddress}`
      check()
    },
  })
  trackChild(proc)
  const cleanupConfig = async () => {
    if (configDir !== undefined) await rm(configDir, { recursive: true, force: true })
  }

  const exitError = (status: SupervisedExit): CloudflareTunnelError => {
    const details = { lines: [...lines], exitCode: status.code, exitSignal: status.signal }
    if (status.spawnError !== undefined) {
      return new CloudflareTunnelError(
        'TASKAPP_ERR_CLOUDFLARED_SPAWN_FAILED',
        `cloudflared at ${file} could not be started (${status.spawnError.message}). Check that it is an executable ` +
          'cloudflared binary for this platform.',
        { ...details, cause: status.spawnError },
      )
    }
    if (rateLimited) return rateLimitError()
    if (tokenInvalid) {
      return new CloudflareTunnelError(
        'TASKAPP_ERR_TUNNEL_TOKEN_INVALID',
        `cloudflared refused the tunnel token (it ${exitDescription(status)}). Copy the token again from the ` +
          `Cloudflare dashboard (Zero Trust > Networks > Tunnels). Last output:\n${formatLines(lines)}`,
        details,
      )
    }
    return new CloudflareTunnelError(
      'TASKAPP_ERR_CLOUDFLARED_EXITED',
      `cloudflared ${exitDescription(status)} ${url === undefined || !registered ? 'before the tunnel was ready' : 'unexpectedly'}. ` +
        `Last output:\n${formatLines(lines)}`,
      details,
    )
  }
  const rateLimitError = () =>
    new CloudflareTunnelError(
      'TASKAPP_ERR_TUNNEL_RATE_LIMITED',
      'Cloudflare refused a new quick tunnel: too many requests (HTTP 429). Wait 5-10 minutes before trying again, ' +
        `or use a named tunnel (cloudflareNamedTunnel). Last output:\n${formatLines(lines)}`,
      { lines: [...lines] },
    )

  // Wait for: ready, exit, rate limit, abort, or the deadline; whichever comes first.
  const deadline = AbortSignal.timeout(timeoutMs)
  const signal = userSignal === undefined ? deadline : AbortSignal.any([userSignal, deadline])
  let pollTimer: NodeJS.Timeout | undefined
  let onAbort: () => void = noop
  const outcome = await new Promise<{ ok: true } | { ok: false; error: unknown }>((resolve) => {
    let settled = false
    const settle = (value: { ok: true } | { ok: false; error: unknown }) => {
      if (settled) return
      settled = true
      check = noop
      resolve(value)
    }
    check = () => {
      if (rateLimited) settle({ ok: false, error: rateLimitError() })
      else if (url !== undefined && registered && metricsUrl !== undefined) settle({ ok: true })
    }
    onAbort = () => {
      if (userSignal?.aborted === true) {
        settle({ ok: false, error: userSignal.reason })
        return
      }
      const what =
        url === undefined
          ? 'printed no tunnel URL'
          : !registered
            ? `printed ${url} but registered no connection with Cloudflare's edge`
            : `registered ${url} but logged no "Starting metrics server on" line (keep its log level at info)`
      settle({
        ok: false,
        error: new CloudflareTunnelError(
          'TASKAPP_ERR_TUNNEL_TIMEOUT',
          `cloudflared ${what} within ${timeoutMs} ms. Check that this machine reaches Cloudflare (outbound ` +
            `UDP 7844 for QUIC; try extraArgs ['--protocol', 'http2'] behind a strict firewall), or raise ` +
            `timeoutMs. Last output:\n${formatLines(lines)}`,
          { lines: [...lines] },
        ),
      })
    }
    signal.addEventListener('abort', onAbort, { once: true })
    if (signal.aborted) onAbort()
    proc.spawned.then(
      (p) => (pid = p),
      () => {},
    )
    void proc.exited.then((status) => settle({ ok: false, error: exitError(status) }))
    // Readiness also comes from the metrics server (once its address is logged): /ready answers
    // 200 once a connection is up.
    const poll = async () => {
      if (settled) return
      try {
        const ready = metricsUrl === undefined ? undefined : await probe(`${metricsUrl}/ready`, 1000)
        if (ready?.status === 200) {
          if (url === undefined) url = quickTunnelUrl(await probe(`${metricsUrl}/quicktunnel`, 1000))
          registered = url !== undefined || registered
          check()
        }
      } finally {
        if (!settled) pollTimer = setTimeout(() => void poll(), READY_POLL_MS).unref()
      }
    }
    pollTimer = setTimeout(() => void poll(), READY_POLL_MS).unref()
    check()
  })
  signal.removeEventListener('abort', onAbort)
  clearTimeout(pollTimer)

  if (!outcome.ok) {
    await proc.stop(killGraceMs)
    await cleanupConfig()
    throw outcome.error
  }

  const publicUrl = url ?? ''
  const readyMetricsUrl = metricsUrl ?? ''
  const cloudflaredPid = proc.pid ?? (await proc.spawned)
  let closing = false
  let exitErr: CloudflareTunnelError | undefined
  const closed: Promise<void> = proc.exited.then(async (status) => {
    if (!closing) {
      exitErr = exitError(status)
      logger.warn(
        { pid: cloudflaredPid, url: publicUrl, code: status.code, signal: status.signal },
        exitErr.message,
      )
    }
    await cleanupConfig().catch(noop)
  })
  let closePromise: Promise<void> | undefined
  const close = (): Promise<void> => {
    if (proc.status === undefined) closing = true
    closePromise ??= proc.stop(killGraceMs).then(() => closed)
    return closePromise
  }
  logger.debug(
    { pid: cloudflaredPid, url: publicUrl, metricsUrl: readyMetricsUrl },
    'cloudflare tunnel ready',
  )
  return {
    url: publicUrl,
    pid: cloudflaredPid,
    metricsUrl: readyMetricsUrl,
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
