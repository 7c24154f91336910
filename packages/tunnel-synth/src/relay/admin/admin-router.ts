/**
 * The relay's operating surface: `/livez`, `/readyz`, `/metrics` and the status page (`/admin`),
 * on the main port (behind the admin key) and on an optional admin port. One hook in the relay
 * server: {@link RelayAdmin.wrap} around its request listener.
 */
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { SynthTunnelError, SynthTunnelErrorCode } from '../../errors'
import type { Registry } from 'prom-client'
import { sendJson, sendProblem } from '../problem'
import type { RelayContext } from '../relay-context'
import { AdminAuth, clearedCookie, credentialInQuery, crossOrigin, isHttps } from './admin-auth'
import { resolveAdminOptions } from './admin-options'
import { LoginThrottle } from './login-throttle'
import type { AdminSettings, RelayAdminOptions, RelayClusterProbe } from './admin-options'
import { createRelayMetrics } from './metrics'
import { RelayObserver } from './relay-observer'
import { ownerNames, relayStatus } from './status-data'
import { ADMIN_CSP, STATUS_SCRIPT, loginPage, mainPortPage, statusPage } from './status-page'

type Listener = (req: IncomingMessage, res: ServerResponse) => void

/** A relay's admin surface (see the module comment). */
export interface RelayAdmin {
  /** The request listener of the main port: admin paths here, `/s/...` counted, the rest to `next`. */
  wrap(next: Listener): Listener
  /** Start the admin port when one is configured; its base URL. */
  listen(): Promise<string | undefined>
  close(): Promise<void>
}

const ADMIN_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': ADMIN_CSP,
}

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  extra: Record<string, string> = {},
) {
  res.writeHead(status, {
    ...ADMIN_HEADERS,
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    ...extra,
  })
  res.end(body)
}

const HTML = 'text/html; charset=utf-8'
const MAX_LOGIN_BYTES = 8 * 1024
const TOO_LARGE = Symbol('too large')

/**
 * The `key` field of a form body (`application/x-www-form-urlencoded`, at most 8 KiB); `TOO_LARGE`
 * past that. A larger body is read to its end and dropped, so the answer reaches the browser (leaving
 * it unread would reset the connection).
 */
function formKey(req: IncomingMessage): Promise<string | undefined | typeof TOO_LARGE> {
  return new Promise((resolve) => {
    let text = ''
    let tooLarge = false
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => {
      if (tooLarge) return
      text += chunk
      if (text.length > MAX_LOGIN_BYTES) {
        tooLarge = true
        text = ''
      }
    })
    req.once('end', () => resolve(tooLarge ? TOO_LARGE : (new URLSearchParams(text).get('key') ?? undefined)))
    req.once('error', () => resolve(undefined))
  })
}

const MAIN_PORT_SESSIONS =
  "Open the status page on the relay's admin port (adminPort, taskapp relay --admin-port): on this port it would share an origin with the tunnels' pages. Here only scripts get in, with Authorization: Bearer <admin key>."

/** One relay's admin surface: its observer, metrics registry, auth and routes. */
class Admin implements RelayAdmin {
  readonly observer: RelayObserver | undefined
  private readonly auth: AdminAuth
  private registry: Registry | undefined
  private readonly owners: Map<string, string>
  private server: Server | undefined
  private readonly throttle = new LoginThrottle()

  constructor(
    private readonly ctx: RelayContext,
    private readonly settings: AdminSettings,
    apiKeys: readonly string[],
  ) {
    this.auth = new AdminAuth(settings.keys)
    // counting costs a little per request: only when something can read the counts
    this.observer = settings.keys.length > 0 || settings.port !== undefined ? new RelayObserver() : undefined
    this.owners = ownerNames(apiKeys)
  }

  wrap(next: Listener): Listener {
    const observer = this.observer
    return (req, res) => {
      const url = req.url ?? '/'
      if (url.startsWith('/s/')) {
        observer?.request(req, res)
        return next(req, res)
      }
      if (!this.handle(req, res, url, false)) next(req, res)
    }
  }

  /** Serve an admin path; `false` when `url` is none. */
  private handle(req: IncomingMessage, res: ServerResponse, url: string, adminPort: boolean): boolean {
    const path = url.split('?')[0] ?? '/'
    const get = req.method === 'GET' || req.method === 'HEAD'
    if (path === '/livez' && get) return (sendJson(res, 200, { status: 'ok' }), true)
    if (path === '/readyz' && get) return (void this.readyz(res), true)
    if (path === '/metrics' || path === '/admin' || path.startsWith('/admin/')) {
      if (credentialInQuery(url)) {
        sendProblem(
          res,
          400,
          'TUNNEL_ADMIN_KEY_IN_URL',
          'Never put a key in a URL: send Authorization: Bearer <admin key>, or sign in at /admin.',
        )
        return true
      }
      if (path === '/metrics') this.metrics(req, res, adminPort)
      else this.page(req, res, path, adminPort)
      return true
    }
    return false
  }

  /** The `clusterProbe` option, else the relay's own cluster (set once it started), else none. */
  private get probe(): RelayClusterProbe | undefined {
    return this.settings.probe ?? this.ctx.cluster
  }

  private async ready(): Promise<boolean> {
    if (this.ctx.closing) return false
    const checks = [this.settings.readiness?.(), this.probe?.ready()].filter((c) => c !== undefined)
    if (checks.length === 0) return true
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 2_000)))
    try {
      const all = Promise.all(checks.map((c) => Promise.resolve(c))).then((r) => r.every((ok) => ok === true))
      return await Promise.race([all.catch(() => false), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  private async readyz(res: ServerResponse): Promise<void> {
    if (await this.ready()) return sendJson(res, 200, { status: 'ready' })
    const why = this.ctx.closing
      ? 'The relay is shutting down.'
      : 'A readiness check (the readiness option or the cluster) says not ready.'
    sendProblem(res, 503, 'TUNNEL_NOT_READY', why, { 'retry-after': '1' })
  }

  private disabled(res: ServerResponse): void {
    const where = this.settings.port === undefined ? '' : ' (/metrics is also on the admin port)'
    sendProblem(
      res,
      404,
      'TUNNEL_ADMIN_DISABLED',
      `This relay has no admin key: set adminKey (TASKAPP_RELAY_ADMIN_KEY_FILE) to open /metrics and /admin${where}.`,
    )
  }

  private refused(res: ServerResponse): void {
    sendProblem(
      res,
      401,
      'TUNNEL_ADMIN_AUTH_REQUIRED',
      'Send the admin key as Authorization: Bearer <admin key>, or sign in at /admin.',
      {
        'www-authenticate': 'Bearer realm="taskapp-relay-admin"',
      },
    )
  }

  private metrics(req: IncomingMessage, res: ServerResponse, adminPort: boolean): void {
    const open = adminPort && !this.settings.metricsNeedKeyOnAdminPort
    if (!open && !this.auth.enabled) return this.disabled(res)
    if (!open && !this.auth.allows(req, false)) return this.refused(res)
    this.registry ??= createRelayMetrics(this.ctx, this.observer!, this.probe)
    const registry = this.registry
    registry.metrics().then(
      (text) => send(res, 200, registry.contentType, text),
      () => sendProblem(res, 500, 'TUNNEL_INTERNAL_ERROR', 'Collecting the metrics failed.'),
    )
  }

  /**
   * The status page. Browser sessions (the login form and its cookie) exist only on the admin port:
   * on the main port the page would share an origin with every tunnel's pages (`/s/<route>/…`), whose
   * scripts could then read it with the admin's cookie. There, only `Authorization: Bearer` counts.
   */
  private page(req: IncomingMessage, res: ServerResponse, path: string, adminPort: boolean): void {
    if (!this.auth.enabled) return this.disabled(res)
    if (path === '/admin/status.js') return send(res, 200, 'text/javascript; charset=utf-8', STATUS_SCRIPT)
    if (!adminPort && path === '/admin/login') {
      return sendProblem(res, 403, 'TUNNEL_ADMIN_AUTH_REQUIRED', MAIN_PORT_SESSIONS)
    }
    if (path === '/admin/login' && req.method === 'POST') return void this.login(req, res)
    if (path === '/admin/logout' && req.method === 'POST') {
      return send(res, 303, HTML, '', { location: '/admin', 'set-cookie': clearedCookie(isHttps(req)) })
    }
    const signedIn = this.auth.allows(req, adminPort)
    if ((path === '/admin' || path === '/admin/' || path === '/admin/login') && req.method === 'GET') {
      if (!signedIn) return send(res, 401, HTML, adminPort ? loginPage() : mainPortPage(MAIN_PORT_SESSIONS))
      if (path === '/admin/login') return send(res, 303, HTML, '', { location: '/admin' })
      return void this.status().then((s) => send(res, 200, HTML, statusPage(s)), this.unavailable(res))
    }
    if (path === '/admin/status.json' && req.method === 'GET') {
      if (!signedIn) return this.refused(res)
      return void this.status().then(
        (s) => send(res, 200, 'application/json', JSON.stringify(s)),
        this.unavailable(res),
      )
    }
    sendProblem(res, 404, 'TUNNEL_NOT_FOUND', `Nothing at ${req.method} ${path}.`)
  }

  /** The lease store failed (Redis down): a 503, never an unhandled rejection. */
  private unavailable(res: ServerResponse): (err: unknown) => void {
    return () =>
      sendProblem(
        res,
        503,
        'TUNNEL_CLUSTER_UNAVAILABLE',
        'The lease store does not answer (in a cluster: Redis is down); try again shortly.',
        { 'retry-after': '1' },
      )
  }

  private async status() {
    return relayStatus(this.ctx, this.observer!, this.owners, await this.ready())
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (crossOrigin(req))
      return sendProblem(res, 403, 'TUNNEL_ADMIN_AUTH_REQUIRED', "Sign in from the relay's own /admin page.")
    const address = req.socket.remoteAddress ?? 'unknown'
    const wait = this.throttle.waitMs(address)
    if (wait > 0) {
      req.resume()
      return send(res, 429, HTML, loginPage('Too many wrong keys: wait a minute, then try again.'), {
        'retry-after': String(Math.ceil(wait / 1000)),
      })
    }
    const key = await formKey(req)
    if (key === TOO_LARGE)
      return send(res, 413, HTML, loginPage('That form was too large: paste only the admin key.'))
    if (key === undefined || !this.auth.matches(key)) {
      this.throttle.failed(address)
      return send(res, 401, HTML, loginPage('That is not an admin key of this relay.'))
    }
    this.throttle.succeeded(address)
    send(res, 303, HTML, '', { location: '/admin', 'set-cookie': this.auth.sessionCookie(key, isHttps(req)) })
  }

  async listen(): Promise<string | undefined> {
    const { port, host } = this.settings
    if (port === undefined) return undefined
    const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
      if (!this.handle(req, res, req.url ?? '/', true))
        sendProblem(res, 404, 'TUNNEL_NOT_FOUND', 'Not an admin path: /metrics, /livez, /readyz, /admin.')
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new SynthTunnelError(
            SynthTunnelErrorCode.RelayListenFailed,
            `The relay's admin port could not listen on ${host}:${port} (${err.code ?? err.message}). Pick another adminPort or stop what holds it.`,
            { cause: err },
          ),
        ),
      )
      server.listen(port, host, () => resolve())
    })
    this.server = server
    const address = server.address()
    const bound = typeof address === 'object' && address ? address.port : port
    return `http://${host.includes(':') ? `[${host}]` : host}:${bound}`
  }

  async close(): Promise<void> {
    const server = this.server
    if (!server) return
    this.server = undefined
    const closed = new Promise<void>((resolve) => server.close(() => resolve()))
    server.closeAllConnections()
    await closed
  }
}

/**
 * The admin surface of the relay whose shared state is `ctx`; sets `ctx.observer` when it counts.
 * @throws SynthTunnelError `TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS` for a bad admin option.
 * @example
 * ```ts
 * const admin = createRelayAdmin(ctx, options, apiKeys)
 * const server = createServer(admin.wrap((req, res) => route(req, res)))
 * ```
 */
export function createRelayAdmin(
  ctx: RelayContext,
  options: RelayAdminOptions,
  apiKeys: readonly string[],
): RelayAdmin {
  const admin = new Admin(ctx, resolveAdminOptions(options, apiKeys), apiKeys)
  ctx.observer = admin.observer
  return admin
}
