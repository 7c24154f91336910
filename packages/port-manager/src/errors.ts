import { TaskappError } from '@taskapp/core'
/** Stable codes of {@link PortManagerError}; match on `err.code`, never on the message. */
export const PortManagerErrorCode = {
  PortInUse: 'TASKAPP_ERR_PORT_IN_USE',
  InvalidPort: 'TASKAPP_ERR_INVALID_PORT',
  InvalidHost: 'TASKAPP_ERR_INVALID_HOST',
  NoFreePort: 'TASKAPP_ERR_NO_FREE_PORT',
  InvalidOptions: 'TASKAPP_ERR_INVALID_OPTIONS',
  KillRefused: 'TASKAPP_ERR_KILL_REFUSED',
  KillFailed: 'TASKAPP_ERR_KILL_FAILED',
} as const

/** One of the {@link PortManagerErrorCode} values. */
export type PortManagerErrorCode = (typeof PortManagerErrorCode)[keyof typeof PortManagerErrorCode]

/** The process found listening on a port. */
export interface PortOwner {
  /** Process id. */
  readonly pid: number
  /** Its command line (`/proc/<pid>/cmdline`, arguments joined by spaces), or `''` when unreadable. */
  readonly command: string
}

/**
 * The one error family of `@taskapp/port-manager`.
 *
 * @example
 * try { await listen(server, { port: 8114, onConflict: 'error' }) }
 * catch (err) { if (err instanceof PortManagerError && err.code === 'TASKAPP_ERR_PORT_IN_USE') console.log(err.owner) }
 */
export class PortManagerError extends TaskappError<PortManagerErrorCode> {
  static override readonly family: string = 'PortManagerError'
  override readonly name = 'PortManagerError'
  /** The port concerned, when there is one. */
  readonly port: number | undefined
  /** The process holding the port, when it could be found. */
  readonly owner: PortOwner | undefined

  constructor(
    code: PortManagerErrorCode,
    message: string,
    options: { cause?: unknown; port?: number; owner?: PortOwner } = {},
  ) {
    super(code, message, options)
    this.port = options.port
    this.owner = options.owner
  }
}
