/** Stable codes of {@link PortManagerError}; match on `err.code`, never on the message. */
export type PortManagerErrorCode =
  | 'TASKAPP_ERR_PORT_IN_USE'
  | 'TASKAPP_ERR_INVALID_PORT'
  | 'TASKAPP_ERR_INVALID_HOST'
  | 'TASKAPP_ERR_NO_FREE_PORT'
  | 'TASKAPP_ERR_INVALID_OPTIONS'
  | 'TASKAPP_ERR_KILL_REFUSED'
  | 'TASKAPP_ERR_KILL_FAILED'

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
export class PortManagerError extends Error {
  override readonly name = 'PortManagerError'
  /** Stable code. */
  readonly code: PortManagerErrorCode
  /** The port concerned, when there is one. */
  readonly port: number | undefined
  /** The process holding the port, when it could be found. */
  readonly owner: PortOwner | undefined

  constructor(
    code: PortManagerErrorCode,
    message: string,
    options: { cause?: unknown; port?: number; owner?: PortOwner } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.port = options.port
    this.owner = options.owner
  }
}
