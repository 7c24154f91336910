/**
 * The job pages of the local backend: `GET /jobs` (list), `GET /jobs/{id}` (one job, live),
 * `GET /jobs/{id}/events` (its event stream for the page's script), `GET /jobs/job-page.js`.
 *
 * Access: with no `apiKeys` they are open like the API. With keys, they are served without one only
 * to a browser on the backend's own machine: the peer address and the `Host` header must both be
 * loopback (the Host check stops DNS rebinding); a request that carries a valid key header (a
 * proxy that adds it) is served too. Nothing secret ever goes in a page URL.
 */
import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { JobsErrorCode } from '../../errors'
import { streamEvents } from '../event-routes'
import { hasValidKey, HttpError, sendError } from '../http'
import type { BackendState } from '../routes'
import { errorPageHtml, jobListHtml, jobPageHtml, SCRIPT_PATH } from './page-html'

const JOB_PAGE = /^\/jobs\/([A-Za-z0-9_-]+)(\/events)?$/
/** `127.x.x.x`, `localhost`, `[::1]`, with an optional port. */
const LOOPBACK_HOST = /^(?:127(?:\.\d{1,3}){3}|localhost|\[::1\])(?::\d{1,5})?$/i

/** How long a page's `EventSource` waits before it reconnects after a drop. */
export const PAGE_RETRY_MS = 1000

const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}

function isLoopbackAddress(address: string | undefined): boolean {
  return address !== undefined && (address === '::1' || /^(?:::ffff:)?127\./.test(address))
}

/** Throws 403 `TASKAPP_ERR_JOBS_PAGE_FORBIDDEN` unless the page may be served (see the module doc). */
function checkAccess(state: BackendState, req: IncomingMessage): void {
  if (state.apiKeys === undefined || hasValidKey(req, state.apiKeys)) return
  if (isLoopbackAddress(req.socket.remoteAddress) && LOOPBACK_HOST.test(req.headers.host ?? '')) return
  throw new HttpError(
    403,
    JobsErrorCode.PageForbidden,
    "This backend requires an API key, so its job pages are served only to a browser on the backend's own machine " +
      '(loopback address and Host): open the page there, or forward the port (ssh -L <port>:127.0.0.1:<port>) and open http://127.0.0.1:<port>/jobs.',
  )
}

let script: Promise<string> | undefined

/** The script's text: next to this module in the sources, under `src/` from a build in `dist/`. */
function readScript(): Promise<string> {
  const candidates = ['./job-page.js', '../src/backend/page/job-page.js'].map(
    (p) => new URL(p, import.meta.url),
  )
  script ??= (async () => {
    for (const file of candidates) {
      try {
        return await readFile(file, 'utf8')
      } catch {
        // the other place
      }
    }
    script = undefined
    throw new Error(`job-page.js not found next to ${import.meta.url}`)
  })()
  return script
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { ...HTML_HEADERS, 'content-length': String(Buffer.byteLength(html)) })
  res.end(html)
}

/** A page error as HTML for a browser, as the backend's JSON error for anything else. */
function sendPageError(req: IncomingMessage, res: ServerResponse, error: unknown): void {
  const accept = req.headers.accept ?? ''
  if (!(error instanceof HttpError) || res.headersSent || !accept.includes('text/html'))
    return sendError(res, error)
  sendHtml(res, error.status, errorPageHtml(error.status, error.code, error.message))
}

async function serve(
  state: BackendState,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  path: string,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD')
    throw new HttpError(405, 'method_not_allowed', `${req.method ?? ''} is not allowed on ${path}.`)
  checkAccess(state, req)
  if (path === '/jobs') return sendHtml(res, 200, jobListHtml(state.jobs.values()))
  if (path === SCRIPT_PATH) {
    const text = await readScript()
    res.writeHead(200, {
      'content-type': 'text/javascript; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    })
    return void res.end(text)
  }
  const m = JOB_PAGE.exec(path)
  const job = m === null ? undefined : state.jobs.get(m[1] as string)
  if (m === null || job === undefined) {
    throw new HttpError(
      404,
      JobsErrorCode.JobNotFound,
      m === null
        ? `No page ${path}; the jobs are listed at /jobs.`
        : `No job "${m[1]}" on this backend (it forgets jobs when it restarts); the jobs it has are listed at /jobs.`,
    )
  }
  if (m[2] === '/events')
    return streamEvents(req, res, url, job, {
      open: state.streams,
      retryMs: PAGE_RETRY_MS,
      named: false,
    })
  sendHtml(res, 200, jobPageHtml(job))
}

/** Routes `/jobs` and `/jobs/...`; errors are answered here (HTML for a browser). */
export async function pageRoute(
  state: BackendState,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  path: string,
): Promise<void> {
  try {
    await serve(state, req, res, url, path)
  } catch (error) {
    sendPageError(req, res, error)
  }
}
