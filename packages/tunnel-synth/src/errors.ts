import { TaskappError } from '@taskapp/core'
/**
 * Stable error codes of `@taskapp/tunnel-synth`. Match on `err.code`, never on the message.
 */
export const SynthTunnelErrorCode = {
  /** An option is missing or has the wrong type or range. */
  InvalidOptions: 'TASKAPP_ERR_SYNTH_INVALID_OPTIONS',
  /** No API key: neither `apiKey` nor `SYNTH_API_KEY` is set. */
  ApiKeyMissing: 'TASKAPP_ERR_SYNTH_API_KEY_MISSING',
  /** The backend refused the lease (HTTP 401 or 403): the API key is wrong or lacks access. */
  LeaseRefused: 'TASKAPP_ERR_SYNTH_LEASE_REFUSED',
  /** The backend answered HTTP 429: the account's usage limit is reached. */
  UsageLimit: 'TASKAPP_ERR_SYNTH_USAGE_LIMIT',
  /** The backend answered the lease request with another HTTP error. */
  LeaseFailed: 'TASKAPP_ERR_SYNTH_LEASE_FAILED',
  /** The lease response is not JSON or lacks a required field. */
  LeaseInvalid: 'TASKAPP_ERR_SYNTH_LEASE_INVALID',
  /** The backend could not be reached (connection refused, DNS, timeout). */
  BackendUnreachable: 'TASKAPP_ERR_SYNTH_BACKEND_UNREACHABLE',
  /** The relay's WebSocket endpoint could not be reached. */
  RelayUnreachable: 'TASKAPP_ERR_SYNTH_RELAY_UNREACHABLE',
  /** The relay refused the agent connection or broke the ATTACH handshake. */
  AttachRejected: 'TASKAPP_ERR_SYNTH_ATTACH_REJECTED',
  /** The relay did not answer ATTACH with ATTACH_ACK before the deadline. */
  AttachTimeout: 'TASKAPP_ERR_SYNTH_ATTACH_TIMEOUT',
  /** The lease is gone for good (deleted, expired, or taken over by another agent). */
  LeaseGone: 'TASKAPP_ERR_SYNTH_LEASE_GONE',
  /** Relay options are invalid. */
  RelayInvalidOptions: 'TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS',
  /** The relay could not listen on its port (for example `EADDRINUSE`). */
  RelayListenFailed: 'TASKAPP_ERR_SYNTH_RELAY_LISTEN_FAILED',
  /** The relay's lease file (`createFileLeaseStore`) could not be read, parsed or written. */
  RelayLeaseFile: 'TASKAPP_ERR_SYNTH_RELAY_LEASE_FILE',
  /** A Redis command of the relay failed (Redis down, unreachable or too slow); public answers are 503. */
  RelayRedis: 'TASKAPP_ERR_SYNTH_RELAY_REDIS',
  /** A Redis store or cluster mode was asked for but the optional `ioredis` package is not installed. */
  RedisClientMissing: 'TASKAPP_ERR_SYNTH_REDIS_CLIENT_MISSING',
} as const

/** One of the {@link SynthTunnelErrorCode} values. */
export type SynthTunnelErrorCode = (typeof SynthTunnelErrorCode)[keyof typeof SynthTunnelErrorCode]

/**
 * The one error class of `@taskapp/tunnel-synth` (agent and relay). `code` is stable.
 *
 * @example
 * ```ts
 * try { await synthTunnel().open(target) } catch (err) {
 *   if (err instanceof SynthTunnelError && err.code === 'TASKAPP_ERR_SYNTH_LEASE_REFUSED') { ... }
 * }
 * ```
 */
export class SynthTunnelError extends TaskappError<SynthTunnelErrorCode> {
  static override readonly family: string = 'SynthTunnelError'
  override readonly name = 'SynthTunnelError'
  /** HTTP status behind the error, when there is one (lease calls, WebSocket upgrade). */
  readonly status: number | undefined

  constructor(
    code: SynthTunnelErrorCode,
    message: string,
    options: { cause?: unknown; status?: number } = {},
  ) {
    super(code, message, options)
    this.status = options.status
  }
}
