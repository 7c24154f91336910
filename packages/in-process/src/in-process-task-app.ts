import { EventEmitter } from 'node:events'
import { appCleanup, Cleanups, notYet, statsOf, type InProcessTaskAppEvents } from './app-parts'
import { callerHeaders } from './caller-headers'
import { InProcessError, messageOf, type StartStep } from './errors'
import { checkResolvedApp, resolveApp, type ResolvedApp } from './load'
import { safeLog } from '@taskapp/core'
import { defaultLogger, type Logger } from './logger'
import { validateOptions, type ResolvedOptions } from './options'
import type { InProcessTaskAppOptions, InProcessTaskAppState } from './option-types'
import type { TunnelMode } from './tunnel-spec'
import { registerForSignals, signalHandled, unregisterForSignals, type SignalTarget } from './signals'
import type { OpenTunnel } from './tunnel'
import type { TaskAppStats } from '@taskapp/task-server'
import { prepareTunnel } from './tunnels'
import { bindLocal, openTunnel, waitLocalHealthy, watchTunnel } from './start-steps'
import { describeCause } from './start-failure'

/**
 * Runs a task app inside this Node.js process: binds a port, waits until the app answers healthy,
 * opens a tunnel, and tears it all down on `stop()`, on dispose, on an abort signal, or on
 * SIGINT/SIGTERM. See the README for the lifecycle and every option.
 *
 * @example
 * ```ts
 * await using app = await InProcessTaskApp.start({ configFactory: buildConfig, tunnel: { mode: 'local' } })
 * console.log(app.url) // http://127.0.0.1:8114
 * ```
 *
 * @example
 * ```ts
 * const app = new InProcessTaskApp({ taskAppPath: './task-app.ts', port: 0 })
 * await app.start()
 * try { await runJob(app.url, app.headers) } finally { await app.stop() }
 * ```
 */
export class InProcessTaskApp extends EventEmitter<InProcessTaskAppEvents> implements AsyncDisposable {
  /**
   * Creates an instance and starts it; resolves once it is running.
   *
   * @example
   * ```ts
   * await using app = await InProcessTaskApp.start({ config, tunnel: { mode: 'local' }, port: 0 })
   * ```
   */
  static async start(options: InProcessTaskAppOptions<InProcessTaskApp>): Promise<InProcessTaskApp> {
    const app = new InProcessTaskApp(options)
    return app.start()
  }

  readonly #options: ResolvedOptions
  readonly #logger: Logger
  readonly #abort = new AbortController()
  readonly #cleanups = new Cleanups()
  #state: InProcessTaskAppState = 'idle'
  #startPromise: Promise<this> | undefined
  #stopPromise: Promise<void> | undefined
  #stopRequested = false
  #resolved: ResolvedApp | undefined
  #tunnel: OpenTunnel | undefined
  #tunnelName: string | undefined
  #headers: Readonly<Record<string, string>> = {}
  #closingTunnel = false
  #port: number | undefined
  #localUrl: string | undefined
  #url: string | undefined
  #registered = false
  #exitingOnSignal = false
  #markStartSettled: () => void = () => {}
  /** Resolves once start() has finished, successfully or after its rollback. */
  readonly #startSettled = new Promise<void>((resolve) => {
    this.#markStartSettled = resolve
  })
  readonly #signalTarget: SignalTarget
  readonly #onUserAbort = (): void => {
    this.#backgroundStop('signal option aborted')
  }

  /**
   * Checks every option (throws {@link InProcessError} on a bad one) without starting anything.
   *
   * @example
   * ```ts
   * const app = new InProcessTaskApp({ config, tunnel: { mode: 'local' } })
   * await app.start()
   * ```
   */
  constructor(options: InProcessTaskAppOptions<InProcessTaskApp>) {
    super()
    this.#options = validateOptions(options)
    this.#logger = this.#options.logger ?? defaultLogger
    this.#signalTarget = {
      logger: this.#logger,
      stopGraceMs: this.#options.stopGraceMs,
      stopForSignal: async (sig, exiting) => {
        this.#exitingOnSignal = exiting
        safeLog(this.#logger, 'info', { signal: sig, port: this.#port }, 'stopping task app on signal')
        this.#backgroundStop(sig)
        await this.stop().catch(() => {})
      },
    }
  }

  /** Lifecycle state. */
  get state(): InProcessTaskAppState {
    return this.#state
  }

  /** Public URL (no trailing slash): the tunnel's, or the local one in `local` mode. Throws before start. */
  get url(): string {
    if (this.#url === undefined) throw notYet('url')
    return this.#url
  }

  /** Local URL, `http://127.0.0.1:<port>` (127.0.0.1 even when bound to 0.0.0.0). Throws before the port is bound. */
  get localUrl(): string {
    if (this.#localUrl === undefined) throw notYet('localUrl')
    return this.#localUrl
  }

  /** The port actually bound (may differ from the option with `onPortConflict: 'next'` or port 0). Throws before bind. */
  get port(): number {
    if (this.#port === undefined) throw notYet('port')
    return this.#port
  }

  /** The host the server binds. */
  get host(): string {
    return this.#options.host
  }

  /** The tunnel mode; `'custom'` when a `tunnel` backend was given. */
  get tunnelMode(): TunnelMode | 'custom' {
    return this.#options.tunnel.mode
  }

  /**
   * Exactly the headers a caller of {@link InProcessTaskApp.url} must send (`{}` before start and
   * when none): the tunnel's (relay worker token, preconfigured auth header) plus `X-API-Key`
   * when the app wants a key and the tunnel does not add it (the relay agent adds it for an app
   * without container tokens). A container token is never listed: Synth's backend signs its own.
   */
  get headers(): Readonly<Record<string, string>> {
    return { ...this.#headers }
  }

  /** Relay tunnels only: the worker token jobs must be given, as the tunnel reports it. */
  get taskAppWorkerToken(): string | undefined {
    return this.#tunnel?.workerToken
  }

  /**
   * True when the app verifies Synth container tokens (`X-Synth-Container-Authorization`, trusted
   * keys from `containerAuth` or `SYNTH_CONTAINER_TRUSTED_PUBKEYS`). A caller then needs a token
   * signed by a trusted key: Synth's backend signs its own for each call, so none is listed in
   * {@link InProcessTaskApp.headers}.
   */
  get containerTokens(): boolean {
    return this.#resolved?.containerAuth ?? false
  }

  /**
   * The API key the app accepts and the health check sends: the `apiKey` option, else
   * `ENVIRONMENT_API_KEY`, else the config's first key, else one generated for this run.
   * `undefined` for a ready-made `app` when none is set, and for a token-only app (container
   * tokens, no key given anywhere). Never log it in full.
   */
  get apiKey(): string | undefined {
    return this.#resolved?.apiKey ?? this.#options.apiKey
  }

  /** True when {@link InProcessTaskApp.apiKey} was generated for this run (nobody else knows it). */
  get apiKeyGenerated(): boolean {
    return this.#resolved?.generatedKey ?? false
  }

  /** The task server's running count (`TaskAppStats`); `undefined` before load and for a plain listener. */
  stats(): TaskAppStats | undefined {
    return statsOf(this.#resolved?.listener)
  }

  /**
   * Starts the app: resolve it, bind the port, wait until healthy, open the tunnel, register for
   * signals, call `onStart`. Resolves with the instance once running. Calling it again returns the
   * same promise. On failure everything already started is stopped, in reverse order, and the
   * promise rejects with `TASKAPP_ERR_START_FAILED` (the original error as `cause`).
   *
   * @example
   * ```ts
   * const app = new InProcessTaskApp({ config, tunnel: { mode: 'local' } })
   * await app.start()
   * ```
   */
  start(): Promise<this> {
    if (this.#startPromise && (this.#state === 'starting' || this.#state === 'running'))
      return this.#startPromise
    if (this.#state !== 'idle') {
      return Promise.reject(
        new InProcessError(
          'TASKAPP_ERR_INVALID_STATE',
          `Cannot start a task app that is ${this.#state}; create a new instance.`,
        ),
      )
    }
    this.#startPromise = this.#run()
    return this.#startPromise
  }

  async #run(): Promise<this> {
    const options = this.#options
    if (options.signal?.aborted) {
      this.#state = 'stopped'
      this.#markStartSettled()
      throw options.signal.reason
    }
    this.#state = 'starting'
    const signal = options.signal ? AbortSignal.any([this.#abort.signal, options.signal]) : this.#abort.signal
    options.signal?.addEventListener('abort', this.#onUserAbort, { once: true })
    if (options.handleSignals) {
      registerForSignals(this.#signalTarget)
      this.#registered = true
    }
    const at: { step: StartStep | undefined } = { step: undefined }
    try {
      await this.#startSteps(signal, at)
    } catch (err) {
      await this.#cleanups.run(this.#logger, 'start failed')
      this.#unregister()
      this.#state = this.#stopRequested ? 'stopped' : 'failed'
      this.#markStartSettled()
      if (this.#exitingOnSignal) {
        // SIGINT/SIGTERM arrived while starting and the process is about to die of it (no handler
        // of the user's): surface nothing until the signal has been re-raised, so an unhandled
        // rejection cannot end the process with exit code 1 first. Then settle all the same (the
        // process normally died already; if the signal could not kill it, the caller hears why).
        await signalHandled()
      }
      if (options.signal?.aborted) throw options.signal.reason
      if (this.#abort.signal.aborted) throw this.#abort.signal.reason
      const { step } = at
      if (step === undefined) throw err
      // The caller gets the error; logging it too would print it twice (DEBUG keeps a trace).
      safeLog(this.#logger, 'debug', { step, error: err }, `task app failed to start (${step})`)
      throw new InProcessError(
        'TASKAPP_ERR_START_FAILED',
        `Task app failed to start at step '${step}': ${describeCause(err, options.tunnel.mode)}`,
        { cause: err, step },
      )
    }
    this.#state = 'running'
    this.#markStartSettled()
    safeLog(
      this.#logger,
      'info',
      { url: this.#url, localUrl: this.#localUrl, port: this.#port, tunnel: this.#tunnelName },
      `task app running at ${this.#url}`,
    )
    this.#emitSafe('start', this)
    return this
  }

  #emitSafe<K extends keyof InProcessTaskAppEvents>(event: K, ...args: InProcessTaskAppEvents[K]): void {
    if (event === 'error' && this.listenerCount('error') === 0) return
    try {
      ;(this.emit as (event: K, ...args: InProcessTaskAppEvents[K]) => boolean)(event, ...args)
    } catch (err) {
      safeLog(this.#logger, 'warn', { event, error: err }, `a '${event}' listener threw; ignored`)
    }
  }

  /** The start steps in order; `at.step` says which one is running, for the error. */
  async #startSteps(signal: AbortSignal, at: { step: StartStep | undefined }): Promise<void> {
    const options = this.#options
    const makeBackend = await prepareTunnel(options)
    signal.throwIfAborted()
    const resolved = await resolveApp(options.input, {
      apiKey: options.apiKey,
      containerAuth: options.containerAuth,
      logger: options.logger,
    })
    this.#resolved = resolved
    this.#cleanups.pushIf(appCleanup(resolved.lifecycle, options.stopGraceMs))
    checkResolvedApp(resolved, options.tunnel.mode, this.#logger)
    signal.throwIfAborted()

    at.step = 'bind'
    const { port, localUrl, server } = await bindLocal(resolved, options, {
      logger: this.#logger,
      signal,
      onServer: (cleanup) => this.#cleanups.push(cleanup),
      onConflict: (event) => this.#emitSafe('port-conflict', event),
    })
    this.#port = port
    this.#localUrl = localUrl

    await waitLocalHealthy(localUrl, { options, resolved, logger: this.#logger, signal, at })

    this.#url = await openTunnel(makeBackend, {
      options,
      resolved,
      logger: this.#logger,
      target: { localUrl, port: this.#port, server },
      signal,
      at,
      onOpen: (tunnel, name) => this.#adoptTunnel(tunnel, name),
    })

    at.step = 'onStart'
    await options.onStart?.(this as never)
    signal.throwIfAborted()
  }

  /** Records the open tunnel: closed at stop, watched for a close nobody asked for. */
  #adoptTunnel(tunnel: OpenTunnel, name: string): void {
    this.#tunnel = tunnel
    this.#tunnelName = name
    this.#headers = callerHeaders(this.#options.tunnel.mode, this.#resolved!, tunnel.headers)
    this.#cleanups.push({
      name: 'tunnel',
      run: () => {
        this.#closingTunnel = true
        return tunnel.close()
      },
    })
    watchTunnel(tunnel, name, {
      logger: this.#logger,
      isClosing: () => this.#closingTunnel,
      onLost: (event) => this.#emitSafe('tunnel-lost', event),
    })
  }

  #unregister(): void {
    this.#options.signal?.removeEventListener('abort', this.#onUserAbort)
    if (this.#registered) {
      this.#registered = false
      unregisterForSignals(this.#signalTarget)
    }
  }

  /** A stop nobody awaits (signal, abort): failures go to the `error` event and the log. */
  #backgroundStop(reason: string): void {
    this.stop().catch((err: unknown) => {
      safeLog(this.#logger, 'error', { reason, error: err }, 'task app did not stop cleanly')
      this.#emitSafe('error', err instanceof Error ? err : new Error(String(err)))
    })
  }

  /**
   * Stops the app: `onStop`, close the tunnel, close the server (in-flight requests get
   * `stopGraceMs`, then their sockets are destroyed), close the app, unregister signals. Idempotent
   * and safe to call concurrently (every call gets the same promise); a failing step does not skip
   * the others, and the promise then rejects with `TASKAPP_ERR_STOP_FAILED`. Called during
   * `start()`, it aborts the start.
   *
   * @example
   * ```ts
   * await app.stop()
   * ```
   */
  stop(): Promise<void> {
    this.#stopPromise ??= this.#doStop()
    return this.#stopPromise
  }

  async #doStop(): Promise<void> {
    this.#stopRequested = true
    if (this.#state === 'starting') {
      this.#abort.abort(new InProcessError('TASKAPP_ERR_ABORTED', 'The task app was stopped while starting.'))
      await this.#startSettled
    }
    if (this.#state === 'idle') this.#state = 'stopped'
    if (this.#state !== 'running') return
    this.#state = 'stopping'
    safeLog(this.#logger, 'info', { url: this.#url }, 'stopping task app')
    try {
      await this.#options.onStop?.(this as never)
    } catch (err) {
      safeLog(this.#logger, 'warn', { error: err }, 'onStop threw; stopping anyway')
    }
    const errors = await this.#cleanups.run(this.#logger, 'stop')
    this.#unregister()
    this.#state = 'stopped'
    safeLog(this.#logger, 'info', { url: this.#url }, 'task app stopped')
    this.#emitSafe('stop', this)
    if (errors.length > 0) {
      const cause = errors.length === 1 ? errors[0] : new AggregateError(errors, 'several stop steps failed')
      throw new InProcessError(
        'TASKAPP_ERR_STOP_FAILED',
        `The task app stopped, but a step failed: ${errors.map(messageOf).join('; ')}`,
        { cause },
      )
    }
  }

  /** Same as {@link InProcessTaskApp.stop}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}
