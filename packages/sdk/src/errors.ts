/** Stable codes of {@link SdkError}; each is listed in the README's Errors table. */
export type SdkErrorCode = 'TASKAPP_ERR_CLI_USAGE' | 'TASKAPP_ERR_UNKNOWN_TUNNEL_MODE'

/**
 * The one error family of `@taskapp/sdk` (its own code; everything it re-exports keeps its own
 * family). The CLI exits 2 on `TASKAPP_ERR_CLI_USAGE`.
 *
 * @example
 * ```ts
 * try {
 *   parseCommand(['serve', '--port', 'abc'])
 * } catch (err) {
 *   if (err instanceof SdkError && err.code === 'TASKAPP_ERR_CLI_USAGE') console.error(err.message)
 * }
 * ```
 */
export class SdkError extends Error {
  override readonly name = 'SdkError'
  /** Stable code. */
  readonly code: SdkErrorCode

  constructor(code: SdkErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}
