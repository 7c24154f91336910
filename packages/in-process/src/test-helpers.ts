/**
 * Helpers for this package's tests (not exported from the package, not in its tarball): fake
 * tunnel backends, tiny apps, a task-app config and an HTTP GET. The shared ones (deferred,
 * recordingLogger, spawnFixture) come from `@taskapp/test-utils`.
 */
import { request as httpRequest } from 'node:http'
import type { Agent, IncomingMessage, ServerResponse } from 'node:http'
import { deferred } from '@taskapp/test-utils'
import { onTestFinished, vi } from 'vitest'
import type { TaskAppConfig } from '@taskapp/task-server'
import type { AppLike } from './option-types'
import type { OpenTunnel, TunnelBackend, TunnelTarget } from './tunnel'
import { setTunnelModuleLoader } from './tunnels'

/**
 * Unsets (with `vi.stubEnv`, undone by `vi.unstubAllEnvs()`) every `SYNTH_*` and `TASKAPP_RELAY_*`
 * variable, so a test sets only the ones it means and the default relay can never be Synth's
 * hosted one by accident.
 */
export function clearRelayEnv(): void {
  for (const name of Object.keys(process.env)) {
    if (name.startsWith('SYNTH_') || name.startsWith('TASKAPP_RELAY_')) vi.stubEnv(name, undefined)
  }
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

/** A quick tunnel opened by the real `@taskapp/tunnel-cloudflare` (with the cloudflared double). */
export type OpenedQuickTunnel = OpenTunnel & { pid?: number; metricsUrl?: string }

/**
 * Wraps the real `@taskapp/tunnel-cloudflare` (the import stays the real one) so the test sees the
 * quick tunnel it opens; `opened()` is that tunnel once open. Undone when the test finishes.
 */
export function watchQuickTunnel(): { opened: () => OpenedQuickTunnel | undefined } {
  let opened: OpenedQuickTunnel | undefined
  onTestFinished(
    setTunnelModuleLoader(async (specifier) => {
      const mod = (await import(specifier)) as Record<string, unknown>
      const quick = mod.cloudflareQuickTunnel as (o: object) => TunnelBackend
      return {
        ...mod,
        cloudflareQuickTunnel: (options: object) => {
          const backend = quick(options)
          return {
            name: backend.name,
            open: async (target, openOptions) => (opened = await backend.open(target, openOptions)),
          } satisfies TunnelBackend
        },
      }
    }),
  )
  return { opened: () => opened }
}
