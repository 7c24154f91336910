/** What a rollout ends with: the validated response, or an error ready for the wire and the job record. */
import { randomUUID } from 'node:crypto'
import type { RolloutRequest } from '../config'
import { TaskServerError } from '../errors'
import type { WireErrorCode } from '../http-errors'
import { safeLog, type TaskAppLogger } from '../logger'
import {
  applyResponseDefaults,
  describeIssues,
  rolloutResponseSchema,
  toIssues,
  type RolloutResponseOutput,
} from '../schemas'
import type { FinalRunState } from './run'

/** The end of one rollout. */
export type Outcome =
  | { readonly ok: true; readonly response: RolloutResponseOutput; readonly durationMs: number }
  | {
      readonly ok: false
      readonly status: number
      readonly code: WireErrorCode
      readonly message: string
      readonly extra?: Record<string, unknown>
      readonly error: TaskServerError
      readonly durationMs: number
      readonly jobStatus: 'failed' | 'cancelled'
      readonly errorId?: string
    }

/** Marks an abort caused by the caller going away; nobody is left to answer. */
export const CLIENT_GONE = Symbol('client-gone')

/** The run state an outcome leaves the run in. */
export function finalStateOf(outcome: Outcome): FinalRunState {
  return outcome.ok ? 'completed' : outcome.jobStatus
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function failure(
  fields: Omit<Extract<Outcome, { ok: false }>, 'ok' | 'durationMs'>,
  durationMs: number,
): Outcome {
  return { ok: false, ...fields, durationMs }
}

/** Validates what the handler returned (accepting the legacy `metrics` alias of `reward_info`). */
export function validateResponse(
  raw: unknown,
  request: RolloutRequest,
  requestId: string,
  durationMs: number,
  logger: TaskAppLogger,
): Outcome {
  let candidate = raw
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    const obj = raw as Record<string, unknown>
    if (obj.reward_info === undefined && obj.metrics !== undefined) {
      const { metrics, ...rest } = obj
      candidate = { ...rest, reward_info: metrics }
    }
  }
  const parsed = rolloutResponseSchema.safeParse(candidate)
  if (parsed.success) {
    if (parsed.data.trace_correlation_id !== request.trace_correlation_id) {
      safeLog(
        logger,
        'warn',
        { requestId, expected: request.trace_correlation_id, got: parsed.data.trace_correlation_id },
        'task-server: the rollout response does not echo the request trace_correlation_id',
      )
    }
    return { ok: true, response: applyResponseDefaults(parsed.data), durationMs }
  }
  const issues = toIssues(parsed.error)
  const summary = describeIssues(issues)
  const error = new TaskServerError(
    'TASKAPP_ERR_INVALID_ROLLOUT_RESPONSE',
    `The rollout handler returned an invalid RolloutResponse (${summary}); return { trace_correlation_id, reward_info: { outcome_reward } }.`,
  )
  safeLog(logger, 'error', { requestId, issues }, 'task-server: invalid RolloutResponse from the handler')
  return failure(
    {
      status: 500,
      code: 'invalid_rollout_response',
      message: `The rollout handler returned an invalid RolloutResponse: ${summary}`,
      error,
      jobStatus: 'failed',
      extra: { issues },
    },
    durationMs,
  )
}

/** The outcome of an aborted run: 504 past its deadline, else 503 cancelled. */
export function abortedOutcome(reason: unknown, durationMs: number): Outcome {
  if (reason instanceof TaskServerError && reason.code === 'TASKAPP_ERR_ROLLOUT_TIMEOUT') {
    return failure(
      { status: 504, code: 'rollout_timeout', message: reason.message, error: reason, jobStatus: 'failed' },
      durationMs,
    )
  }
  const cancelled =
    reason instanceof TaskServerError
      ? reason
      : new TaskServerError(
          'TASKAPP_ERR_ROLLOUT_CANCELLED',
          'The caller went away before the rollout finished.',
          {
            cause: reason === CLIENT_GONE ? undefined : reason,
          },
        )
  return failure(
    {
      status: 503,
      code: 'rollout_cancelled',
      message: cancelled.message,
      error: cancelled,
      jobStatus: 'cancelled',
    },
    durationMs,
  )
}

/** The outcome of a handler that threw: 500 with an error id; the error itself only goes to the log. */
export function thrownOutcome(
  err: unknown,
  request: RolloutRequest,
  requestId: string,
  durationMs: number,
  logger: TaskAppLogger,
): Outcome {
  const errorId = randomUUID()
  const error = new TaskServerError(
    'TASKAPP_ERR_ROLLOUT_FAILED',
    `The rollout handler threw (${errorMessage(err)}); error id ${errorId}.`,
    { cause: err },
  )
  safeLog(
    logger,
    'error',
    { err, errorId, requestId, trace_correlation_id: request.trace_correlation_id },
    'task-server: the rollout handler threw',
  )
  return failure(
    {
      status: 500,
      code: 'rollout_failed',
      message: `The rollout handler failed; look up error id ${errorId} in the server log.`,
      error,
      jobStatus: 'failed',
      extra: { error_id: errorId },
      errorId,
    },
    durationMs,
  )
}
