/** `waitUntilComplete`: follow the events to the end, then read the result and judge it. */
import { JobsError, JobsErrorCode } from '../errors'
import { isFinalStatus, type JobStatus } from '../wire'
import type { JobEvent, JobResult, WaitOptions } from './types'

/** Default of `waitUntilComplete({ timeoutMs })`: one hour, synth-ai's default. */
export const DEFAULT_WAIT_TIMEOUT_MS = 3_600_000

const MAX_TIMER_MS = 2_147_483_647

/** What {@link waitForJob} needs from its job. */
export interface WaitInput {
  readonly jobId: string
  readonly options: WaitOptions
  readonly events: (signal: AbortSignal) => AsyncIterable<JobEvent>
  readonly result: (signal: AbortSignal) => Promise<JobResult>
}

function checkWaitOptions(options: WaitOptions): number {
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS
  if (
    typeof timeoutMs !== 'number' ||
    !(timeoutMs > 0) ||
    (Number.isFinite(timeoutMs) ? timeoutMs > MAX_TIMER_MS : timeoutMs !== Infinity)
  ) {
    throw new JobsError(
      JobsErrorCode.InvalidConfig,
      `timeoutMs must be a positive number of milliseconds up to ${MAX_TIMER_MS}, or Infinity; got ${String(timeoutMs)}.`,
    )
  }
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
    throw new JobsError(JobsErrorCode.InvalidConfig, 'onEvent must be a function (event) => void.')
  }
  return timeoutMs
}

/** Resolves with the result of a `succeeded` (or `paused`) job; rejects as `waitUntilComplete` says. */
function judge(jobId: string, result: JobResult): JobResult {
  if (result.status === 'failed') {
    throw new JobsError(
      JobsErrorCode.JobFailed,
      `Job ${jobId} failed: ${result.error ?? 'the backend gave no reason'}.`,
      { jobId },
    )
  }
  if (result.status === 'cancelled') {
    throw new JobsError(
      JobsErrorCode.Cancelled,
      `Job ${jobId} was cancelled${result.error === undefined ? '' : `: ${result.error}`}.`,
      { jobId },
    )
  }
  return result
}

/**
 * Follows `events` to the end (calling `onEvent` for each), reads the result and judges it. The
 * status comes from the status route; when that is not final yet but a terminal event was seen,
 * the event's status counts (as in synth-ai's Rust client).
 */
export async function waitForJob(input: WaitInput): Promise<JobResult> {
  const { jobId, options } = input
  const timeoutMs = checkWaitOptions(options)
  options.signal?.throwIfAborted()
  const controller = new AbortController()
  const onAbort = (): void => controller.abort(options.signal?.reason)
  options.signal?.addEventListener('abort', onAbort, { once: true })
  const timer =
    timeoutMs === Infinity
      ? undefined
      : setTimeout(() => {
          controller.abort(
            new JobsError(
              JobsErrorCode.Timeout,
              `Job ${jobId} did not finish within ${timeoutMs} ms (timeoutMs). It keeps running: wait again, or cancel() it.`,
              { jobId },
            ),
          )
        }, timeoutMs)
  try {
    let terminal: JobStatus | undefined
    for await (const event of input.events(controller.signal)) {
      terminal = event.terminalStatus ?? terminal
      await options.onEvent?.(event)
      controller.signal.throwIfAborted()
    }
    const result = await input.result(controller.signal)
    const status = !isFinalStatus(result.status) && terminal !== undefined ? terminal : result.status
    return judge(jobId, { ...result, status })
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', onAbort)
  }
}
