import { TaskappError } from '@taskapp/core'
/** Stable codes of {@link InProcessError}; match on `err.code`, never on the message. */
export const InProcessErrorCode = {
  InvalidOptions: 'TASKAPP_ERR_INVALID_OPTIONS',
  NoInput: 'TASKAPP_ERR_NO_INPUT',
  MultipleInputs: 'TASKAPP_ERR_MULTIPLE_INPUTS',
  InvalidPort: 'TASKAPP_ERR_INVALID_PORT',
  InvalidHost: 'TASKAPP_ERR_INVALID_HOST',
  TaskAppNotFound: 'TASKAPP_ERR_TASK_APP_NOT_FOUND',
  TaskAppInvalid: 'TASKAPP_ERR_TASK_APP_INVALID',
  TaskAppLoadFailed: 'TASKAPP_ERR_TASK_APP_LOAD_FAILED',
  TsxMissing: 'TASKAPP_ERR_TSX_MISSING',
  TunnelUnavailable: 'TASKAPP_ERR_TUNNEL_UNAVAILABLE',
  StartFailed: 'TASKAPP_ERR_START_FAILED',
  Aborted: 'TASKAPP_ERR_ABORTED',
  InvalidState: 'TASKAPP_ERR_INVALID_STATE',
  StopFailed: 'TASKAPP_ERR_STOP_FAILED',
} as const

/** One of the {@link InProcessErrorCode} values. */
export type InProcessErrorCode = (typeof InProcessErrorCode)[keyof typeof InProcessErrorCode]

/** The lifecycle step that failed, carried by `TASKAPP_ERR_START_FAILED`. */
export type StartStep = 'bind' | 'health' | 'tunnel' | 'verify' | 'onStart'

/**
 * The facts an {@link InProcessError} carries besides its message, so a caller (the `taskapp`
 * CLI) can word an invalid option in its own terms, e.g. a flag instead of an option name.
 */
export interface InProcessErrorDetails {
  /** The original error. */
  cause?: unknown
  /** For `TASKAPP_ERR_START_FAILED`: the step that failed. */
  step?: StartStep
  /** The option at fault, as a dotted path: `host`, `apiKey`, `tunnel.relayUrl`, `taskAppPath`. */
  option?: string
  /** Environment variables that could have supplied that option, first read first. */
  env?: readonly string[]
  /** What a valid value looks like (`'a non-empty string'`). */
  expected?: string
}

/**
 * The one error family of `@taskapp/in-process`. Invalid options throw before anything starts;
 * a failure after something started is `TASKAPP_ERR_START_FAILED` with the failing `step` and the
 * original error as `cause`. An error about one option names it in `option` (with the
 * environment variables that can supply it in `env`); option values are not copied onto the
 * error, since some are secrets.
 *
 * @example
 * ```ts
 * try {
 *   await InProcessTaskApp.start({ configFactory: buildConfig, tunnel: { mode: 'local' } })
 * } catch (err) {
 *   if (err instanceof InProcessError && err.code === 'TASKAPP_ERR_START_FAILED') console.error(err.step, err.cause)
 * }
 * ```
 */
export class InProcessError extends TaskappError<InProcessErrorCode> {
  static override readonly family: string = 'InProcessError'
  override readonly name = 'InProcessError'
  /** For `TASKAPP_ERR_START_FAILED`: the step that failed. */
  readonly step: StartStep | undefined
  /** The option at fault (`host`, `tunnel.relayUrl`, ...), when the error is about one. */
  readonly option: string | undefined
  /** Environment variables that could have supplied {@link InProcessError.option}; empty when none. */
  readonly env: readonly string[]
  /** What a valid value of {@link InProcessError.option} looks like, when that says it. */
  readonly expected: string | undefined

  constructor(code: InProcessErrorCode, message: string, options: InProcessErrorDetails = {}) {
    super(code, message, options)
    this.step = options.step
    this.option = options.option
    this.env = options.env ?? []
    this.expected = options.expected
  }
}

export { messageOf } from '@taskapp/core'
