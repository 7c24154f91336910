/**
 * `createLocalBackend`: a server that implements Synth's prompt-optimization job API and runs a
 * real small GEPA search against the task app each job names, with an interceptor in front of an
 * upstream OpenAI-compatible model.
 */
import type { KeyObject } from 'node:crypto'
import { createServer } from 'node:http'
import { safeLog, silentLogger, type Logger } from '@taskapp/core'
import { JobsError } from '../errors'
import { closeServer, HttpError, isObject, listen, originOf, sendError } from './http'
import { httpUrl } from './config-values'
import { Interceptor } from './interceptor'
import { cancelJob } from './job-runner'
import { route, type BackendState } from './routes'
import { createTokenSigner, type TokenSigner } from './token-signer'
import type { UpstreamOptions } from './upstream'

/** Options of {@link createLocalBackend}. */
export interface LocalBackendOptions {
  /**
   * Port to listen on; 0 picks a free one.
   * @default 0
   */
  port?: number
  /**
   * Host to listen on.
   * @default '127.0.0.1'
   */
  host?: string
  /**
   * Keys the job API accepts (`Authorization: Bearer <key>` or `X-API-Key: <key>`); others get 401.
   * The interceptor and `/health` need none.
   * @default undefined (no key checked)
   */
  apiKeys?: readonly string[]
  /** The OpenAI-compatible model the interceptor forwards to and the optimizer reflects with. */
  upstream: UpstreamOptions
  /**
   * Ed25519 private key (a `KeyObject`, or base64 of its 32-byte seed as in
   * `SYNTH_CONTAINER_AUTH_PRIVATE_KEY`): every call to a task app then carries a container token
   * (`X-Synth-Container-Authorization`) signed with it. Task apps trust `publicKey`.
   * @default undefined (no token; the job's task-app API key, if any, is sent as X-API-Key)
   */
  signingKey?: KeyObject | string
  /**
   * Key id written in the tokens' footer (`kid`).
   * @default undefined
   */
  signingKeyId?: string
  /**
   * Base URL under which task apps reach this backend's interceptor (e.g. a tunnel's URL).
   * @default the URL it listens on
   */
  publicUrl?: string
  /**
   * Jobs pending or running at once; a create past it gets 429.
   * @default 4
   */
  maxActiveJobs?: number
  /**
   * Deadline of one rollout call to a task app, in milliseconds (also sent as `safety.max_time_s`).
   * @default 300000
   */
  rolloutTimeoutMs?: number
  /**
   * Serve the job pages: `GET /jobs` (list) and `GET /jobs/{id}` (one job, live). With `apiKeys`
   * they are served without a key only to a browser on this machine (loopback address and `Host`).
   * @default true
   */
  jobPages?: boolean
  /** @default a silent logger */
  logger?: Logger
  /** Aborting it closes the backend. */
  signal?: AbortSignal
}

/** A running local backend. */
export interface LocalBackend extends AsyncDisposable {
  /** `http://host:port`: give it to a job client as the backend URL (clients add `/api`). */
  readonly url: string
  /** `<publicUrl>/interceptor`: candidates are served under `/<candidate-id>[/<rollout-id>]/v1`. */
  readonly interceptorUrl: string
  /** Standard base64 of the raw Ed25519 public key task apps must trust (with `signingKey`). */
  readonly publicKey?: string
  /** The same as a `SYNTH_CONTAINER_TRUSTED_PUBKEYS` entry (`kid:base64` or `base64`). */
  readonly trustedKey?: string
  /**
   * Drops every event stream open now (API and job pages) from the server side, as a network
   * failure would; clients resume from the last `seq` they saw. Returns how many were dropped.
   * For tests of resumption, and for shedding long-lived connections.
   */
  closeEventStreams(): number
  /** Cancels running jobs (aborting their rollouts), then stops the server. Safe to call twice. */
  close(): Promise<void>
}

function badOption(message: string): JobsError {
  return new JobsError('TASKAPP_ERR_JOBS_INVALID_CONFIG', `createLocalBackend: ${message}`)
}

function checkPositiveInt(value: unknown, name: string, min: number, max: number): void {
  if (
    value !== undefined &&
    (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
  ) {
    throw badOption(`"${name}" must be an integer from ${min} to ${max}.`)
  }
}

function checkUpstream(upstream: unknown): UpstreamOptions {
  if (!isObject(upstream) || typeof upstream.baseUrl !== 'string') {
    throw badOption(
      '"upstream" must be { baseUrl, apiKey?, model?, timeoutMs? } (an OpenAI-compatible base URL).',
    )
  }
  const baseUrl = (() => {
    try {
      return httpUrl(upstream.baseUrl, 'upstream.baseUrl')
    } catch (error) {
      throw badOption((error as Error).message)
    }
  })()
  for (const name of ['apiKey', 'model'] as const) {
    const v = upstream[name]
    if (v !== undefined && (typeof v !== 'string' || v === ''))
      throw badOption(`"upstream.${name}" must be a non-empty string.`)
  }
  checkPositiveInt(upstream.timeoutMs, 'upstream.timeoutMs', 1, 2_147_483_647)
  return { ...(upstream as unknown as UpstreamOptions), baseUrl }
}

function checkOptions(options: LocalBackendOptions): { upstream: UpstreamOptions; signer?: TokenSigner } {
  if (typeof options !== 'object' || options === null) throw badOption('options must be an object.')
  const { port, host, apiKeys, signingKeyId, publicUrl, signal } = options
  checkPositiveInt(port, 'port', 0, 65_535)
  if (host !== undefined && (typeof host !== 'string' || host === ''))
    throw badOption('"host" must be a non-empty string.')
  if (
    apiKeys !== undefined &&
    (!Array.isArray(apiKeys) ||
      apiKeys.length === 0 ||
      !apiKeys.every((k) => typeof k === 'string' && k !== ''))
  ) {
    throw badOption('"apiKeys" must be a non-empty array of non-empty strings (omit it to check no key).')
  }
  checkPositiveInt(options.maxActiveJobs, 'maxActiveJobs', 1, 10_000)
  checkPositiveInt(options.rolloutTimeoutMs, 'rolloutTimeoutMs', 1000, 2_147_483_647)
  if (
    signingKeyId !== undefined &&
    (typeof signingKeyId !== 'string' || !/^[^\s,:]{1,128}$/.test(signingKeyId))
  ) {
    throw badOption('"signingKeyId" must be 1 to 128 characters without whitespace, "," or ":".')
  }
  if (publicUrl !== undefined) {
    if (typeof publicUrl !== 'string') throw badOption('"publicUrl" must be an absolute http(s) URL.')
    httpUrl(publicUrl, 'createLocalBackend: "publicUrl"')
  }
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw badOption('"signal" must be an AbortSignal.')
  if (options.jobPages !== undefined && typeof options.jobPages !== 'boolean')
    throw badOption('"jobPages" must be a boolean.')
  const upstream = checkUpstream(options.upstream)
  if (options.signingKey === undefined) return { upstream }
  return { upstream, signer: createTokenSigner(options.signingKey, signingKeyId) }
}

/**
 * Starts a local backend for Synth's prompt-optimization job API: create (every generation),
 * status, SSE and paged events, cancel; GEPA jobs run a real search against their task app, with
 * the task app's model calls going through the interceptor to `upstream`.
 *
 * @throws {@link JobsError} `TASKAPP_ERR_JOBS_INVALID_CONFIG` for bad options,
 * `TASKAPP_ERR_JOBS_LISTEN_FAILED` when it cannot listen (the promise rejects).
 *
 * @example
 * ```ts
 * await using model = await createDeterministicModel()
 * await using backend = await createLocalBackend({ upstream: { baseUrl: model.url }, apiKeys: [process.env.SYNTH_API_KEY!] })
 * console.log(backend.url) // give it to the job client as backend URL
 * ```
 */
export async function createLocalBackend(options: LocalBackendOptions): Promise<LocalBackend> {
  const { upstream, signer } = checkOptions(options)
  const { port = 0, host = '127.0.0.1', logger = silentLogger, signal } = options
  signal?.throwIfAborted()
  const server = createServer()
  const bound = await listen(server, port, host, 'The local backend')
  const url = originOf(host, bound)
  const interceptorUrl = `${(options.publicUrl ?? url).replace(/\/+$/, '')}/interceptor`
  const state: BackendState = {
    jobs: new Map(),
    deps: {
      interceptor: new Interceptor(upstream, logger),
      interceptorBase: interceptorUrl,
      upstream,
      rolloutTimeoutMs: options.rolloutTimeoutMs ?? 300_000,
      logger,
      ...(signer !== undefined && { signer }),
    },
    maxActiveJobs: options.maxActiveJobs ?? 4,
    logger,
    pages: options.jobPages ?? true,
    streams: new Set(),
    ...(options.apiKeys !== undefined && { apiKeys: [...options.apiKeys] }),
  }
  server.on('request', (req, res) => {
    route(state, req, res).catch((error: unknown) => {
      if (!(error instanceof HttpError) && !(error instanceof JobsError)) {
        safeLog(logger, 'error', { err: error, path: req.url }, 'local backend: request failed')
      }
      sendError(res, error)
    })
  })
  let closing: Promise<void> | undefined
  const onAbort = (): void => void close()
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      signal?.removeEventListener('abort', onAbort)
      await Promise.all(
        [...state.jobs.values()].map((job) => cancelJob(job, 'The local backend is closing.')),
      )
      await closeServer(server)
    })())
  signal?.addEventListener('abort', onAbort, { once: true })
  safeLog(
    logger,
    'info',
    { url, ...(signer && { publicKey: signer.publicKey, trustedKey: signer.trusted }) },
    signer
      ? `local backend listening; task apps must trust SYNTH_CONTAINER_TRUSTED_PUBKEYS=${signer.trusted}`
      : 'local backend listening',
  )
  const closeEventStreams = (): number => {
    const open = [...state.streams]
    state.streams.clear()
    for (const res of open) res.destroy()
    return open.length
  }
  return {
    url,
    interceptorUrl,
    closeEventStreams,
    ...(signer !== undefined && { publicKey: signer.publicKey, trustedKey: signer.trusted }),
    close,
    [Symbol.asyncDispose]: close,
  }
}
