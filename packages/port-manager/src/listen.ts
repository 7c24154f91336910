import type { Server } from 'node:net'
import type { AddressInfo } from 'node:net'
import getPort, { portNumbers } from 'get-port'
import { PortManagerError } from './errors'
import type { PortConflictPolicy, PortOwner } from './errors'
import { findPortOwner, killPortOwner } from './owner'
import { pollUntil } from './poll'
import { MAX_PORT, assertCount, assertHost, assertPort } from './validate'

/** What {@link listen} does when the port is taken. */
export type OnConflict = PortConflictPolicy

/**
 * What {@link listen} did about a taken port, given to `onConflictResolved`: with `'next'` it
 * bound `boundPort` instead of `port`; with `'kill'` it stopped `owner` and bound `port` itself.
 *
 * @example
 * const event: PortConflictEvent = { policy: 'next', port: 8114, host: '127.0.0.1', owner: { pid: 42, command: 'node x.js' }, boundPort: 8115 }
 */
export interface PortConflictEvent {
  readonly policy: 'next' | 'kill'
  /** The port asked for, found taken. */
  readonly port: number
  readonly host: string
  /** The process that held `port`; `undefined` when it could not be told (other platforms, another user's). */
  readonly owner: PortOwner | undefined
  /** The port now bound. */
  readonly boundPort: number
}

/** Options of {@link listen}. */
export interface ListenOptions {
  /**
   * Port to bind; 0 lets the OS choose any free port.
   * @default 0
   */
  port?: number
  /**
   * Address to bind. Must be loopback unless `allowNonLoopback` is set.
   * @default '127.0.0.1'
   */
  host?: string
  /**
   * On `EADDRINUSE`: `'next'` binds the next free port, `'error'` throws
   * `TASKAPP_ERR_PORT_IN_USE` naming the holder, `'kill'` stops the holder and binds (opt-in only).
   * @default 'next'
   */
  onConflict?: OnConflict
  /**
   * Bind attempts before giving up with `TASKAPP_ERR_NO_FREE_PORT`.
   * @default 20
   */
  maxAttempts?: number
  /**
   * Allow a host that other machines can reach (`0.0.0.0`, a LAN address).
   * @default false
   */
  allowNonLoopback?: boolean
  /**
   * With `onConflict: 'kill'`: how long to wait for the holder after SIGTERM, then after SIGKILL,
   * and then for the port to be released (the bind is retried on `EADDRINUSE` until then).
   * @default 5000
   */
  killTimeoutMs?: number
  /**
   * Called once after the port asked for was found taken and `listen` bound anyway: another port
   * (`'next'`) or the same one after stopping its holder (`'kill'`), with the holder's PID and
   * command, so the caller can say so. Not called when the port was free. Errors it throws are
   * ignored (the server stays bound).
   * @default undefined
   */
  onConflictResolved?: (event: PortConflictEvent) => void
  /** Abort binding; the server is left unbound. */
  signal?: AbortSignal
}

function bindOnce(server: Server, port: number, host: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      server.off('listening', onListening)
      server.off('error', onError)
      signal?.removeEventListener('abort', onAbort)
    }
    const onListening = () => {
      cleanup()
      resolve()
    }
    const onError = (err: Error) => {
      cleanup()
      reject(err)
    }
    const onAbort = () => {
      cleanup()
      if (server.listening) server.close()
      reject(signal!.reason)
    }
    server.once('listening', onListening)
    server.once('error', onError)
    signal?.addEventListener('abort', onAbort, { once: true })
    server.listen({ port, host, exclusive: true })
  })
}

function inUseMessage(port: number, host: string, owner?: { pid: number; command: string }): string {
  const who = owner ? ` by PID ${owner.pid}${owner.command ? ` (${owner.command})` : ''}` : ''
  return (
    `Port ${port} on ${host} is already in use${who}. ` +
    `Choose another port, or pass onConflict: 'next' to bind the next free one` +
    `${owner ? ` (or onConflict: 'kill' to stop PID ${owner.pid} first)` : ''}.`
  )
}

function isAddressInUse(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE'
}

/**
 * Binds `port` once its holder has been stopped. The kernel can release the port a moment after
 * the holder is seen to go (a child process sharing the socket keeps it open, another process
 * takes it), so `EADDRINUSE` is retried, polling with a growing interval (2 ms up to 100 ms), until
 * `timeoutMs` has passed; then it throws `TASKAPP_ERR_PORT_IN_USE` naming the current holder.
 */
async function bindWhenReleased(
  server: Server,
  port: number,
  host: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  let lastError: unknown
  const attempt = async () => {
    try {
      await bindOnce(server, port, host, signal)
      return true
    } catch (err) {
      if (!isAddressInUse(err) || signal?.aborted) throw err
      lastError = err
      return false
    }
  }
  if (!(await pollUntil(attempt, { timeoutMs, signal })))
    throw await portInUseError(port, host, 'kill', lastError)
}

async function portInUseError(
  port: number,
  host: string,
  policy: OnConflict,
  cause: unknown,
): Promise<PortManagerError> {
  const owner = await findPortOwner(port)
  return new PortManagerError('TASKAPP_ERR_PORT_IN_USE', inUseMessage(port, host, owner), {
    port,
    host,
    owner,
    policy,
    cause,
  })
}

/** Calls the caller's hook; what it throws is dropped (the server is bound either way). */
function report(hook: ListenOptions['onConflictResolved'], event: PortConflictEvent): void {
  try {
    hook?.(event)
  } catch {
    // the caller's hook; the bind succeeded regardless
  }
}

/**
 * Binds `server` (any `node:net` / `node:http` server) directly and retries on `EADDRINUSE`,
 * so there is no window between "the port looked free" and "we bound it". Resolves with the
 * bound port.
 *
 * @example
 * import { createServer } from 'node:http'
 * const server = createServer((req, res) => res.end('ok'))
 * const port = await listen(server, { port: 8114 }) // 8114, or the next free port
 */
export async function listen(server: Server, options: ListenOptions = {}): Promise<number> {
  const {
    port = 0,
    host = '127.0.0.1',
    onConflict = 'next',
    maxAttempts = 20,
    allowNonLoopback = false,
    killTimeoutMs = 5000,
    onConflictResolved,
    signal,
  } = options
  assertPort(port)
  assertHost(host, allowNonLoopback)
  assertCount('maxAttempts', maxAttempts, 1)
  assertCount('killTimeoutMs', killTimeoutMs, 0)
  if (onConflict !== 'next' && onConflict !== 'error' && onConflict !== 'kill') {
    throw new PortManagerError(
      'TASKAPP_ERR_INVALID_OPTIONS',
      `Invalid onConflict ${JSON.stringify(onConflict)}: expected 'next', 'error' or 'kill'.`,
    )
  }
  if (server.listening) {
    throw new PortManagerError(
      'TASKAPP_ERR_INVALID_OPTIONS',
      'The server is already listening; close it first.',
    )
  }
  signal?.throwIfAborted()

  const tried = new Set<number>()
  let candidate = port
  let lastError: unknown
  // The holder of the port asked for, looked up (only for the hook) when it is first found taken.
  let firstOwner: PortOwner | undefined
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    signal?.throwIfAborted()
    try {
      await bindOnce(server, candidate, host, signal)
      const bound = (server.address() as AddressInfo).port
      if (attempt > 1) {
        report(onConflictResolved, { policy: 'next', port, host, owner: firstOwner, boundPort: bound })
      }
      return bound
    } catch (err) {
      if (!isAddressInUse(err) || signal?.aborted) throw err
      lastError = err
    }
    tried.add(candidate)
    if (onConflict === 'error') throw await portInUseError(candidate, host, 'error', lastError)
    if (onConflict === 'kill') {
      const owner = await killPortOwner(candidate, { timeoutMs: killTimeoutMs, signal })
      await bindWhenReleased(server, candidate, host, killTimeoutMs, signal)
      const bound = (server.address() as AddressInfo).port
      report(onConflictResolved, { policy: 'kill', port, host, owner, boundPort: bound })
      return bound
    }
    if (attempt === 1 && onConflictResolved !== undefined) firstOwner = await findPortOwner(port)
    // 'next': ask for a free port above the one taken; binding it may still lose a race, which
    // the loop absorbs. get-port reserves what it hands out, so racers in one process differ.
    const from = Math.min(candidate + 1, MAX_PORT)
    candidate = await getPort({
      port: portNumbers(from, Math.min(from + 100, MAX_PORT)),
      host,
      exclude: tried,
    })
  }
  throw new PortManagerError(
    'TASKAPP_ERR_NO_FREE_PORT',
    `No free port found on ${host} after ${maxAttempts} attempts starting at ${port}. ` +
      `Raise maxAttempts, choose another port, or pass port: 0 for any free port.`,
    { port, host, attempts: maxAttempts, cause: lastError },
  )
}
