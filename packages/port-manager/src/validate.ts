import { isIP } from 'node:net'
import { PortManagerError } from './errors'

/** Lowest port a task app may ask for (below it needs root). */
export const MIN_PORT = 1024
/** Highest TCP port. */
export const MAX_PORT = 65535

/**
 * True for addresses that only this machine can reach: `localhost`, `127.0.0.0/8`, `::1`
 * and the IPv4-mapped `::ffff:127.x.x.x`.
 *
 * @example
 * isLoopbackHost('127.0.0.1') // true
 * isLoopbackHost('0.0.0.0')   // false: every interface
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (isIP(h) === 6) {
    if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)
    return mapped !== null && mapped[1]!.startsWith('127.')
  }
  return false
}

/** Throws `TASKAPP_ERR_INVALID_PORT` unless `port` is an integer in [1024, 65535] (or 0 when allowed). */
export function assertPort(port: unknown, { allowZero = true } = {}): asserts port is number {
  const ok =
    typeof port === 'number' &&
    Number.isInteger(port) &&
    ((allowZero && port === 0) || (port >= MIN_PORT && port <= MAX_PORT))
  if (!ok) {
    throw new PortManagerError(
      'TASKAPP_ERR_INVALID_PORT',
      `Invalid port ${JSON.stringify(port)}: expected an integer in [${MIN_PORT}, ${MAX_PORT}]` +
        (allowZero ? ' or 0 for any free port.' : '.'),
    )
  }
}

/** Throws `TASKAPP_ERR_INVALID_HOST` for a non-string host, or a non-loopback one without the opt-in. */
export function assertHost(host: unknown, allowNonLoopback = false): asserts host is string {
  if (typeof host !== 'string' || host.trim() === '') {
    throw new PortManagerError(
      'TASKAPP_ERR_INVALID_HOST',
      `Invalid host ${JSON.stringify(host)}: expected a host name or IP address such as '127.0.0.1'.`,
      typeof host === 'string' ? { host } : {},
    )
  }
  if (!allowNonLoopback && !isLoopbackHost(host)) {
    throw new PortManagerError(
      'TASKAPP_ERR_INVALID_HOST',
      `Host '${host}' is not a loopback address, so the task app would be reachable from other machines. ` +
        `Use '127.0.0.1' (the default), or pass allowNonLoopback: true if you really mean to expose it.`,
      { host },
    )
  }
}

/** Throws `TASKAPP_ERR_INVALID_OPTIONS` unless `value` is an integer >= min. */
export function assertCount(name: string, value: unknown, min: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new PortManagerError(
      'TASKAPP_ERR_INVALID_OPTIONS',
      `Invalid ${name} ${JSON.stringify(value)}: expected an integer >= ${min}.`,
    )
  }
}
