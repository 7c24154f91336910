/**
 * Helpers for this package's tests (not exported from the package): polling with a deadline,
 * fake tunnel backends, tiny apps and HTTP helpers. Timers here are unref'd.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { dirname, join } from 'node:path'
import type { Agent, IncomingMessage, ServerResponse } from 'node:http'
import { isPortAvailable } from '@taskapp/port-manager'
import type { TaskAppConfig } from '@taskapp/task-server'
import type { Logger } from './logger'
import type { AppLike } from './options'
import type { OpenTunnel, TunnelBackend, TunnelTarget } from './tunnel'

/** A promise with its resolve/reject (Node 20 has no Promise.withResolvers). */
export interface Deferred<T> {
  promise: Promise<T>
  resolve(value: T): void
  reject(reason: unknown): void
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (reason: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Polls `condition` until it returns true (or a truthy value), or throws after `timeoutMs`. */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 10, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await condition()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise<void>((resolve) => setTimeout(resolve, intervalMs).unref())
  }
}

/** Waits until nothing listens on `port` at 127.0.0.1. */
export function waitForPortFree(port: number, timeoutMs = 10_000): Promise<boolean> {
  return waitFor(() => isPortAvailable(port, { host: '127.0.0.1' }), {
    timeoutMs,
    what: `port ${port} to be free`,
  })
}

/** A logger that records every call. */
export interface RecordingLogger extends Logger {
  readonly records: { level: keyof Logger; obj: Record<string, unknown>; msg: string | undefined }[]
}

export function recordingLogger(): RecordingLogger {
  const records: RecordingLogger['records'] = []
  const at =
    (level: keyof Logger) =>
    (obj: Record<string, unknown>, msg?: string): void => {
      records.push({ level, obj, msg })
    }
  return { records, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

/** A controllable fake tunnel backend (a legitimate {@link TunnelBackend}, used through the public option). */
export interface FakeTunnelBackend extends TunnelBackend {
  readonly opened: TunnelTarget[]
  readonly events: string[]
  /** Makes the currently open tunnel die on its own (`closed` resolves, or rejects with `error`). */
  die(error?: unknown): void
  current: (OpenTunnel & { closeCalls: number }) | undefined
}

export function fakeTunnel(
  options: {
    url?: string
    headers?: Record<string, string>
    workerToken?: string
    openError?: unknown
    closeError?: unknown
    events?: string[]
  } = {},
): FakeTunnelBackend {
  const events = options.events ?? []
  let dieWith: ((error?: unknown) => void) | undefined
  const backend: FakeTunnelBackend = {
    name: 'fake',
    opened: [],
    events,
    current: undefined,
    die(error?: unknown) {
      dieWith?.(error)
    },
    async open(target, openOptions) {
      openOptions?.signal?.throwIfAborted()
      events.push('tunnel.open')
      if (options.openError !== undefined) throw options.openError
      backend.opened.push(target)
      const done = deferred<void>()
      dieWith = (error?: unknown) => (error === undefined ? done.resolve() : done.reject(error))
      const tunnel = {
        url: options.url ?? `https://fake-tunnel.invalid/${target.port}/`,
        ...(options.headers ? { headers: options.headers } : {}),
        ...(options.workerToken ? { workerToken: options.workerToken } : {}),
        closed: done.promise,
        closeCalls: 0,
        async close() {
          tunnel.closeCalls += 1
          events.push('tunnel.close')
          done.resolve()
          if (options.closeError !== undefined) throw options.closeError
        },
        async [Symbol.asyncDispose]() {
          await tunnel.close()
        },
      }
      backend.current = tunnel
      return tunnel
    },
  }
  return backend
}

/** A small request listener: `/health` answers 200 (or `healthStatus`), `/slow` waits for `release`, else 200 'ok'. */
export function plainApp(
  options: {
    healthStatus?: number
    onSlow?: (req: IncomingMessage, res: ServerResponse) => void
    events?: string[]
    closeError?: unknown
  } = {},
): AppLike {
  const app = ((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/health') {
      res.statusCode = options.healthStatus ?? 200
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ healthy: (options.healthStatus ?? 200) === 200 }))
      return
    }
    if (req.url === '/slow' && options.onSlow) {
      options.onSlow(req, res)
      return
    }
    res.end('ok')
  }) as AppLike
  if (options.events) {
    const events = options.events
    app.lifecycle = {
      async close() {
        events.push('app.close')
        if (options.closeError !== undefined) throw options.closeError
      },
    }
  }
  return app
}

/** A minimal valid task-app config. */
export function testConfig(overrides: Partial<TaskAppConfig> = {}): TaskAppConfig {
  return {
    appId: 'test-app',
    name: 'Test app',
    description: 'A task app for tests',
    provideTasksetDescription: () => ({ splits: ['train'] }),
    provideTaskInstances: (seeds) =>
      seeds.map((seed) => ({ task: { id: 'test-app', name: 'Test app' }, task_metadata: { seed } })),
    rollout: (request) => ({
      trace_correlation_id: request.trace_correlation_id,
      reward_info: { outcome_reward: 1 },
    }),
    ...overrides,
  }
}

/**
 * GET over node:http. Each request uses its own connection unless an `agent` is given (so a
 * keep-alive agent can be tested explicitly). Resolves status and body, rejects on socket errors.
 */
export function get(
  url: string,
  options: { headers?: Record<string, string>; agent?: Agent; signal?: AbortSignal } = {},
): Promise<{ status: number; body: string; socketReused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { headers: options.headers, agent: options.agent ?? false, signal: options.signal },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, socketReused: req.reusedSocket }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/** A running fixture child process with its stdout parsed as JSON lines. */
export interface FixtureProcess {
  readonly child: ChildProcess
  readonly lines: Record<string, unknown>[]
  /** Resolves with the first line (seen or future) matching `predicate`. */
  waitForLine(
    predicate: (line: Record<string, unknown>) => boolean,
    what?: string,
  ): Promise<Record<string, unknown>>
  /** Resolves with how the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stderr(): string
}

/**
 * Spawns `node --conditions=@taskapp/source --import tsx <script> ...args` from this package's
 * folder. Kill it yourself or let `onTestFinished` do it (the caller registers that).
 */
export async function spawnFixture(script: string, args: string[]): Promise<FixtureProcess> {
  const cwd = join(dirname(script), '..', '..')
  const child = spawn(
    process.execPath,
    ['--conditions=@taskapp/source', '--import', 'tsx', script, ...args],
    {
      cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    },
  )
  const lines: Record<string, unknown>[] = []
  const waiters: {
    predicate: (line: Record<string, unknown>) => boolean
    resolve: (line: Record<string, unknown>) => void
  }[] = []
  let stderr = ''
  let buffer = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk
    let nl: number
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const text = buffer.slice(0, nl)
      buffer = buffer.slice(nl + 1)
      let line: Record<string, unknown>
      try {
        line = JSON.parse(text) as Record<string, unknown>
      } catch {
        continue
      }
      lines.push(line)
      for (const waiter of [...waiters]) {
        if (waiter.predicate(line)) {
          waiters.splice(waiters.indexOf(waiter), 1)
          waiter.resolve(line)
        }
      }
    }
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  return {
    child,
    lines,
    exited,
    stderr: () => stderr,
    waitForLine(predicate, what = 'a line') {
      const seen = lines.find(predicate)
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        waiters.push({ predicate, resolve })
        void exited.then(({ code, signal }) =>
          reject(
            new Error(`fixture exited (code ${code}, signal ${signal}) before ${what}; stderr:\n${stderr}`),
          ),
        )
      })
    },
  }
}
