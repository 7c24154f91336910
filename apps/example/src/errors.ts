import { TaskappError } from '@taskapp/core'
/** Stable codes of {@link ExampleError}; each is listed in the README's Errors table. */
export const ExampleErrorCode = {
  ExampleDataInvalid: 'TASKAPP_ERR_EXAMPLE_DATA_INVALID',
  ExampleUnknownSplit: 'TASKAPP_ERR_EXAMPLE_UNKNOWN_SPLIT',
  ExampleUnknownPolicy: 'TASKAPP_ERR_EXAMPLE_UNKNOWN_POLICY',
  ExamplePolicyConfig: 'TASKAPP_ERR_EXAMPLE_POLICY_CONFIG',
  ExamplePolicyHttp: 'TASKAPP_ERR_EXAMPLE_POLICY_HTTP',
  ExamplePolicyResponse: 'TASKAPP_ERR_EXAMPLE_POLICY_RESPONSE',
} as const

/** One of the {@link ExampleErrorCode} values. */
export type ExampleErrorCode = (typeof ExampleErrorCode)[keyof typeof ExampleErrorCode]

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
export class ExampleError extends TaskappError<ExampleErrorCode> {
  static override readonly family: string = 'ExampleError'
  override readonly name = 'ExampleError'

  constructor(code: ExampleErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options)
  }
}
