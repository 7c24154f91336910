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

/** What `listen` does when the port is taken (its `onConflict` option). */
export type PortConflictPolicy = 'next' | 'error' | 'kill'

/**
 * The facts a {@link PortManagerError} carries besides its message, so a caller can word the
 * error in its own terms (a CLI names its flags, a library its options).
 */
export interface PortManagerErrorDetails {
  /** The underlying error. */
  cause?: unknown
  /** The port concerned. */
  port?: number
  /** The host it was bound on (or refused). */
  host?: string
  /** The process holding the port, when it could be found. */
  owner?: PortOwner
  /** The conflict policy in effect (`TASKAPP_ERR_PORT_IN_USE`: `'error'`, or `'kill'` when the port stayed taken). */
  policy?: PortConflictPolicy
  /** Bind attempts made (`TASKAPP_ERR_NO_FREE_PORT`). */
  attempts?: number
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
  /** The host concerned, when there is one. */
  readonly host: string | undefined
  /** The process holding the port, when it could be found. */
  readonly owner: PortOwner | undefined
  /** The conflict policy in effect, for `TASKAPP_ERR_PORT_IN_USE`. */
  readonly policy: PortConflictPolicy | undefined
  /** Bind attempts made, for `TASKAPP_ERR_NO_FREE_PORT`. */
  readonly attempts: number | undefined

  constructor(code: PortManagerErrorCode, message: string, options: PortManagerErrorDetails = {}) {
    super(code, message, options)
    this.port = options.port
    this.host = options.host
    this.owner = options.owner
    this.policy = options.policy
    this.attempts = options.attempts
  }
}
