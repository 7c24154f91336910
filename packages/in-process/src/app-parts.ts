/**
 * Small parts of {@link InProcessTaskApp}: its event types, the cleanup record, and helpers.
 */
import type { AddressInfo } from 'node:net'
import { safeLog, type Logger } from '@taskapp/core'
import type { PortConflictEvent } from '@taskapp/port-manager'
import type { TaskAppStats } from '@taskapp/task-server'
import { InProcessError } from './errors'
import type { InProcessTaskApp } from './in-process-task-app'

/** What `tunnel-lost` listeners receive. */
export interface TunnelLostEvent {
  /** The public URL that no longer reaches the app. */
  readonly url: string
  /** Name of the tunnel backend. */
  readonly tunnel: string
  /** Why, when the tunnel said (its `closed` promise rejected). */
  readonly error?: unknown
}

/**
 * Events of {@link InProcessTaskApp}: `start` and `stop` with the instance, `tunnel-lost` when the
 * tunnel dies on its own, `port-conflict` when the port asked for was taken and the app bound
 * anyway (`onPortConflict` `'next'` moved it, `'kill'` stopped its holder), `error` for a failure
 * nobody can await (a stop run by a signal).
 */
export interface InProcessTaskAppEvents {
  start: [app: InProcessTaskApp]
  stop: [app: InProcessTaskApp]
  'tunnel-lost': [event: TunnelLostEvent]
  'port-conflict': [event: PortConflictEvent]
  error: [error: Error]
}

export interface Cleanup {
  readonly name: string
  readonly run: () => Promise<void>
}

export function localUrlOf(address: AddressInfo): string {
  let host = address.address
  if (host === '0.0.0.0' || host === '::') host = '127.0.0.1'
  if (host.includes(':')) host = `[${host}]`
  return `http://${host}:${address.port}`
}

export function notYet(what: string): InProcessError {
  return new InProcessError(
    'TASKAPP_ERR_INVALID_STATE',
    `${what} is not known yet: read it after start() resolves.`,
  )
}

/** The `app` cleanup: the app's own `lifecycle.close({ graceMs })`, when it has one. */
export function appCleanup(
  lifecycle: { close?: (options: { graceMs: number }) => unknown } | undefined,
  graceMs: number,
): Cleanup | undefined {
  const close = lifecycle?.close
  if (typeof close !== 'function') return undefined
  return { name: 'app', run: async () => void (await close.call(lifecycle, { graceMs })) }
}

/** What was started, in order, so it can be closed in reverse; a failing close does not skip the others. */
export class Cleanups {
  readonly #list: Cleanup[] = []

  /** Records something to close. */
  push(cleanup: Cleanup): void {
    this.#list.push(cleanup)
  }

  /** Records `cleanup` when there is one. */
  pushIf(cleanup: Cleanup | undefined): void {
    if (cleanup !== undefined) this.#list.push(cleanup)
  }

  /** Closes everything recorded, last first; logs and returns the errors. */
  async run(logger: Logger, reason: string): Promise<unknown[]> {
    const errors: unknown[] = []
    for (let cleanup = this.#list.pop(); cleanup !== undefined; cleanup = this.#list.pop()) {
      try {
        await cleanup.run()
      } catch (err) {
        errors.push(err)
        safeLog(
          logger,
          'error',
          { step: cleanup.name, reason, error: err },
          `failed to close the ${cleanup.name}`,
        )
      }
    }
    return errors
  }
}

/** The running count of a task-server app (its `stats()`), or `undefined` for any other listener. */
export function statsOf(listener: unknown): TaskAppStats | undefined {
  const stats = (listener as { stats?: unknown } | undefined)?.stats
  return typeof stats === 'function' ? (stats as () => TaskAppStats)() : undefined
}
