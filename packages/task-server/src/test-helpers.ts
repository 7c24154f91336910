/**
 * Helpers for this package's tests (not exported from the package, not in its tarball): the
 * test app config, a rollout body, fake MLflow / vendor servers, and in-memory request
 * injection. The generic helpers (`deferred`, `listenLoopback`, `recordingLogger`) come from
 * `@taskapp/test-utils`; wait with `vi.waitFor` / `expect.poll`.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http'
import { Duplex } from 'node:stream'
import { listenLoopback } from '@taskapp/test-utils'
import type { TaskAppConfig } from './config'

// ---------------------------------------------------------------------------------------------
// Test apps

/** The API key the test apps accept. */
export const KEY = 'sk-env-test-0123456789'

/** Headers carrying {@link KEY}. */
export const AUTH = Object.freeze({ 'x-api-key': KEY })

/** A valid config with a trivial handler; `overrides` win. */
export function testConfig(overrides: Partial<TaskAppConfig> = {}): TaskAppConfig {
  return {
    appId: 'banking77',
    name: 'Banking77',
    description: 'Classify a customer query into one of 77 intents.',
    apiKeys: [KEY],
    provideTasksetDescription: () => ({ splits: ['train', 'test'], size: 100 }),
    provideTaskInstances: (seeds) =>
      seeds.map((seed) => ({
        task: { id: 'banking77', name: 'Banking77' },
        dataset: { id: 'banking77', split: 'train' },
        task_metadata: { seed },
      })),
    rollout: (request) => ({
      trace_correlation_id: request.trace_correlation_id,
      reward_info: { outcome_reward: 1 },
    }),
    ...overrides,
  }
}

/** A minimal valid rollout request body; `overrides` are merged at the top level. */
export function rolloutBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    trace_correlation_id: 'trace-1',
    env: { env_name: 'banking77', seed: 3, config: {} },
    policy: { policy_name: 'p', config: { model: 'gpt-4o-mini' } },
    ...overrides,
  }
}

/**
 * `POST /rollout` (`?mode=async` when `async` is set) with {@link AUTH} and a {@link rolloutBody}
 * made from `body`.
 */
export function postRollout(
  app: RequestListener,
  options: { async?: boolean; body?: Record<string, unknown> } = {},
): Promise<InjectResponse> {
  return inject(app, {
    method: 'POST',
    url: options.async ? '/rollout?mode=async' : '/rollout',
    headers: AUTH,
    body: rolloutBody(options.body),
  })
}

// ---------------------------------------------------------------------------------------------
// Fake servers: loopback stand-ins for MLflow and an OpenAI-compatible vendor

/** One recorded call. */
export interface RecordedCall {
  method: string
  path: string
  headers: IncomingMessage['headers']
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test code reads arbitrary JSON
  body: any
}

/** A loopback server that records calls; `close()` / `await using` stops it. */
export interface FakeServer extends AsyncDisposable {
  readonly url: string
  readonly calls: RecordedCall[]
  close(): Promise<void>
}

async function startRecording(
  handler: (call: RecordedCall, res: ServerResponse) => void,
): Promise<FakeServer> {
  const calls: RecordedCall[] = []
  const loopback = await listenLoopback((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      let body: unknown = text
      try {
        body = text ? JSON.parse(text) : undefined
      } catch {
        // keep the raw text
      }
      const call = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body }
      calls.push(call)
      handler(call, res)
    })
  })
  return { url: loopback.url, calls, close: loopback.close, [Symbol.asyncDispose]: loopback.close }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

/**
 * A fake MLflow tracking server speaking the REST API subset the tracker uses. `failWith`
 * makes every call answer that status.
 */
export async function startFakeMlflow(
  options: { existingExperiment?: string; failWith?: number } = {},
): Promise<FakeServer> {
  let runs = 0
  return startRecording((call, res) => {
    if (options.failWith !== undefined) {
      json(res, options.failWith, { error_code: 'INTERNAL_ERROR', message: 'down' })
      return
    }
    if (call.path.startsWith('/api/2.0/mlflow/experiments/get-by-name')) {
      const name = new URL(call.path, 'http://x').searchParams.get('experiment_name')
      if (name === options.existingExperiment) json(res, 200, { experiment: { experiment_id: '7', name } })
      else json(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no such experiment' })
    } else if (call.path === '/api/2.0/mlflow/experiments/create') {
      json(res, 200, { experiment_id: '42' })
    } else if (call.path === '/api/2.0/mlflow/runs/create') {
      runs += 1
      json(res, 200, { run: { info: { run_id: `run-${runs}` } } })
    } else if (
      call.path === '/api/2.0/mlflow/runs/log-batch' ||
      call.path === '/api/2.0/mlflow/runs/update'
    ) {
      json(res, 200, {})
    } else {
      json(res, 404, { error_code: 'ENDPOINT_NOT_FOUND' })
    }
  })
}

/** A fake OpenAI-compatible vendor: answers `respond(call)` as JSON. */
export async function startFakeVendor(
  respond: (call: RecordedCall) => { status: number; body: unknown; raw?: boolean },
): Promise<FakeServer> {
  return startRecording((call, res) => {
    const { status, body, raw } = respond(call)
    if (raw) {
      res.writeHead(status, { 'content-type': 'text/plain' })
      res.end(String(body))
    } else json(res, status, body)
  })
}

// ---------------------------------------------------------------------------------------------
// In-memory request injection: drives an Express app (any `node:http` request listener) through
// a real `http.Server` parser and real `IncomingMessage` / `ServerResponse` objects over an
// in-memory duplex pair. No port is opened.

/** One injected request. */
export interface InjectOptions {
  method?: string
  url: string
  headers?: Record<string, string | string[]>
  /** A string or Buffer is sent as is; anything else is sent as JSON (with a JSON content type). */
  body?: unknown
  /** Aborting destroys the client side of the connection, as a disconnecting client would. */
  signal?: AbortSignal
}

/** What came back. */
export interface InjectResponse {
  status: number
  headers: IncomingHttpHeaders
  text: string
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test code reads arbitrary JSON
  json<T = any>(): T
}

function duplexPair(): [Duplex, Duplex] {
  const make = (getPeer: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        getPeer().push(chunk)
        callback()
      },
      final(callback) {
        getPeer().push(null)
        callback()
      },
      destroy(err, callback) {
        const peer = getPeer()
        if (!peer.destroyed) peer.destroy()
        callback(err)
      },
    })
  // eslint-disable-next-line prefer-const
  let b: Duplex
  const a = make(() => b)
  b = make(() => a)
  return [a, b]
}

const servers = new WeakMap<RequestListener, Server>()

/**
 * Sends one request to `app` in memory and resolves with the full response.
 *
 * @example
 * ```ts
 * const res = await inject(app, { url: '/health', headers: { 'x-api-key': 'k' } })
 * expect(res.status).toBe(200)
 * ```
 */
export function inject(app: RequestListener, options: InjectOptions): Promise<InjectResponse> {
  let server = servers.get(app)
  if (server === undefined) {
    server = createServer(app)
    servers.set(app, server)
  }
  const [clientSide, serverSide] = duplexPair()
  server.emit('connection', serverSide)
  const headers: Record<string, string | string[]> = { ...options.headers }
  let payload: Buffer | undefined
  if (options.body !== undefined) {
    if (typeof options.body === 'string' || Buffer.isBuffer(options.body)) payload = Buffer.from(options.body)
    else {
      payload = Buffer.from(JSON.stringify(options.body))
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
        headers['content-type'] = 'application/json'
    }
  }
  return new Promise<InjectResponse>((resolve, reject) => {
    const req = httpRequest(
      {
        method: options.method ?? 'GET',
        path: options.url,
        headers: { host: 'inject.local', ...headers },
        createConnection: () => clientSide,
        signal: options.signal,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          clientSide.destroy()
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: <T>() => JSON.parse(text) as T,
          })
        })
      },
    )
    req.on('error', (err) => {
      clientSide.destroy()
      reject(err)
    })
    req.end(payload)
  })
}
