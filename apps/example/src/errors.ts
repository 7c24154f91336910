/** Stable codes of {@link ExampleError}; each is listed in the README's Errors table. */
export type ExampleErrorCode =
  | 'TASKAPP_ERR_EXAMPLE_DATA_INVALID'
  | 'TASKAPP_ERR_EXAMPLE_UNKNOWN_SPLIT'
  | 'TASKAPP_ERR_EXAMPLE_UNKNOWN_POLICY'
  | 'TASKAPP_ERR_EXAMPLE_POLICY_CONFIG'
  | 'TASKAPP_ERR_EXAMPLE_POLICY_HTTP'
  | 'TASKAPP_ERR_EXAMPLE_POLICY_RESPONSE'

/**
 * The one error family of the example app. Match on `err.code`.
 *
 * @example
 * try {
 *   dataset.exampleForSeed(3, 'dev')
 * } catch (err) {
 *   if (err instanceof ExampleError && err.code === 'TASKAPP_ERR_EXAMPLE_UNKNOWN_SPLIT') { ... }
 * }
 */
export class ExampleError extends Error {
  override readonly name = 'ExampleError'
  readonly code: ExampleErrorCode

  constructor(code: ExampleErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}
