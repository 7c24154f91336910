import getPort, { portNumbers } from 'get-port'
import { MAX_PORT, assertHost, assertPort } from './validate'

/** Options shared by {@link isPortAvailable} and {@link findAvailablePort}. */
export interface HostOptions {
  /**
   * Address to check.
   * @default '127.0.0.1'
   */
  host?: string
  /**
   * Allow a host other machines can reach.
   * @default false
   */
  allowNonLoopback?: boolean
}

/**
 * Whether `port` can be bound on `host` right now. Only a hint: another process may take it a
 * moment later, so bind with {@link listen} rather than check-then-bind.
 *
 * @example
 * if (await isPortAvailable(8114)) console.log('8114 is free for now')
 */
export async function isPortAvailable(port: number, options: HostOptions = {}): Promise<boolean> {
  const { host = '127.0.0.1', allowNonLoopback = false } = options
  assertPort(port, { allowZero: false })
  assertHost(host, allowNonLoopback)
  return (await getPort({ port, host })) === port
}

/** Options of {@link findAvailablePort}. */
export interface FindAvailablePortOptions extends HostOptions {
  /** Port to try first; the next 100 ports follow, then any free port. */
  preferred?: number
  /** Ports never to return. */
  exclude?: Iterable<number>
}

/**
 * A port that is free on `host` now: `preferred` if it is, else the next free one above it,
 * else any free port. Ports handed out are reserved in this process for a few seconds, so
 * concurrent callers get distinct ports.
 *
 * @example
 * const port = await findAvailablePort({ preferred: 8114 })
 */
export async function findAvailablePort(options: FindAvailablePortOptions = {}): Promise<number> {
  const { preferred, host = '127.0.0.1', allowNonLoopback = false, exclude } = options
  if (preferred !== undefined) assertPort(preferred, { allowZero: false })
  assertHost(host, allowNonLoopback)
  const excluded = [...(exclude ?? [])]
  for (const p of excluded) assertPort(p, { allowZero: false })
  return getPort({
    port: preferred === undefined ? undefined : portNumbers(preferred, Math.min(preferred + 100, MAX_PORT)),
    host,
    exclude: excluded,
  })
}
