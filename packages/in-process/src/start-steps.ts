/**
 * The health and tunnel steps of {@link InProcessTaskApp}: wait until the local server answers
 * healthy, open the tunnel (and check it through its public URL when `verifyTunnel` is on), and
 * watch it for a close nobody asked for.
 */
import type { Server as HttpServer } from 'node:http'
import type { AddressInfo, Server } from 'node:net'
import { safeLog, type Logger } from '@taskapp/core'
import { waitForHealthy } from '@taskapp/health-checker'
import { listen, type PortConflictEvent } from '@taskapp/port-manager'
import { localUrlOf, type Cleanup, type TunnelLostEvent } from './app-parts'
import { createDrainableServer } from './http-server'
import type { StartStep } from './errors'
import type { ResolvedApp } from './load'
import type { ResolvedOptions } from './options'
import type { OpenTunnel } from './tunnel'
import type { TunnelFactory } from './tunnels'
import { portConflictMessage } from './start-failure'

/**
 * The `bind` step: a drainable server for the app's listener (handed to `onServer` as a cleanup
 * before binding, so a failed bind still closes it), bound by {@link bindServer}.
 */
export async function bindLocal(
  resolved: ResolvedApp,
  options: ResolvedOptions,
  ctx: {
    logger: Logger
    signal: AbortSignal
    onServer: (cleanup: Cleanup) => void
    onConflict: (event: PortConflictEvent) => void
  },
): Promise<{ port: number; localUrl: string; server: HttpServer }> {
  const server = createDrainableServer(resolved.listener)
  ctx.onServer({ name: 'server', run: () => server.close(options.stopGraceMs) })
  const port = await bindServer(server.server, options, ctx)
  const localUrl = localUrlOf(server.server.address() as AddressInfo)
  safeLog(ctx.logger, 'debug', { localUrl, source: resolved.source }, 'task app bound')
  return { port, localUrl, server: server.server }
}

/**
 * Binds the server (the `bind` step) with port-manager's `listen`. A port that was taken is
 * never passed over silently: `onPortConflict` `'next'` (the port moved) and `'kill'` (a process
 * was stopped) are logged at INFO and handed to `onConflict` (the app's `port-conflict` event).
 */
export async function bindServer(
  server: Server,
  options: ResolvedOptions,
  ctx: { logger: Logger; signal: AbortSignal; onConflict: (event: PortConflictEvent) => void },
): Promise<number> {
  return listen(server, {
    port: options.port,
    host: options.host,
    onConflict: options.onPortConflict,
    allowNonLoopback: options.allowNonLoopback,
    signal: ctx.signal,
    onConflictResolved: (event) => {
      safeLog(
        ctx.logger,
        'info',
        { port: event.port, boundPort: event.boundPort, owner: event.owner, policy: event.policy },
        portConflictMessage(event),
      )
      ctx.onConflict(event)
    },
  })
}

/** What the open step needs from the app being started. */
export interface OpenTunnelContext {
  readonly options: ResolvedOptions
  readonly resolved: ResolvedApp
  readonly logger: Logger
  /** `server`: the app's own server, handed to the tunnel (`TunnelTarget.server`, the in-process path). */
  readonly target: { readonly localUrl: string; readonly port: number; readonly server?: HttpServer }
  readonly signal: AbortSignal
  /** Which start step runs, for the start error. */
  readonly at: { step: StartStep | undefined }
  /** Called as soon as the tunnel is open, before the check, so a failed check still closes it. */
  readonly onOpen: (tunnel: OpenTunnel, name: string) => void
}

/** Waits until `GET <localUrl>/health` answers healthy (the `health` step). */
export async function waitLocalHealthy(
  localUrl: string,
  ctx: Pick<OpenTunnelContext, 'options' | 'resolved' | 'logger' | 'signal' | 'at'>,
): Promise<void> {
  ctx.at.step = 'health'
  const health = await waitForHealthy(`${localUrl}/health`, {
    ...(ctx.resolved.apiKey ? { apiKey: ctx.resolved.apiKey } : {}),
    timeoutMs: ctx.options.healthCheckTimeoutMs,
    signal: ctx.signal,
  })
  safeLog(ctx.logger, 'debug', { attempts: health.attempts, elapsedMs: health.elapsedMs }, 'task app healthy')
}

/** Opens the tunnel; returns its public URL without a trailing slash. */
export async function openTunnel(makeBackend: TunnelFactory, ctx: OpenTunnelContext): Promise<string> {
  const { options, resolved, target, signal, at } = ctx
  at.step = 'tunnel'
  const backend = makeBackend({
    apiKey: resolved.apiKey,
    containerAuth: resolved.containerAuth,
    logger: ctx.logger,
  })
  const tunnel = await backend.open(
    {
      localUrl: target.localUrl,
      port: target.port,
      host: options.host,
      ...(target.server ? { server: target.server } : {}),
    },
    { signal },
  )
  ctx.onOpen(tunnel, backend.name)
  const url = tunnel.url.replace(/\/+$/, '')
  signal.throwIfAborted()
  if (options.verifyTunnel) {
    at.step = 'verify'
    await waitForHealthy(`${url}/health`, {
      ...(resolved.apiKey ? { apiKey: resolved.apiKey } : {}),
      headers: { ...(tunnel.headers ?? {}) },
      timeoutMs: options.healthCheckTimeoutMs,
      signal,
    })
  }
  return url
}

/**
 * Logs and reports (`onLost`) a tunnel whose `closed` promise settles while `isClosing()` is false:
 * the public URL no longer reaches the app, the local server still runs.
 */
export function watchTunnel(
  tunnel: OpenTunnel,
  name: string,
  hooks: { logger: Logger; isClosing: () => boolean; onLost: (event: TunnelLostEvent) => void },
): void {
  const lost = (error?: unknown): void => {
    if (hooks.isClosing()) return
    const event: TunnelLostEvent = {
      url: tunnel.url,
      tunnel: name,
      ...(error === undefined ? {} : { error }),
    }
    safeLog(
      hooks.logger,
      'warn',
      { ...event },
      'tunnel closed on its own: the public URL no longer reaches the app (the local server still runs)',
    )
    hooks.onLost(event)
  }
  tunnel.closed.then(
    () => lost(),
    (err: unknown) => lost(err),
  )
}
