/** The answers to a job store that failed: 503 when retrying may help, else 500 with an error id. */
import { randomUUID } from 'node:crypto'
import type { Response } from 'express'
import { isTaskServerError } from '../errors'
import { sendError } from '../http-errors'
import { safeLog, type TaskAppLogger } from '../logger'
import { requestIdOf } from '../middleware/request-id'

/**
 * 503 `job_store_full` (every job is still running), 503 `job_store_unavailable` (the store's
 * backend failed or did not answer in time, e.g. a stalled Redis; logged at WARN), both with
 * `Retry-After: 5`; anything else 500 `internal_error` with an error id.
 */
export function sendStoreFailure(res: Response, err: unknown, logger: TaskAppLogger): void {
  if (isTaskServerError(err, 'TASKAPP_ERR_JOB_STORE_FULL')) {
    res.setHeader('Retry-After', '5')
    sendError(res, 503, 'job_store_full', 'Too many rollout jobs are running; retry later.')
    return
  }
  if (isTaskServerError(err, 'TASKAPP_ERR_JOB_STORE_UNAVAILABLE')) {
    safeLog(logger, 'warn', { err, requestId: requestIdOf(res) }, 'task-server: the job store is unavailable')
    res.setHeader('Retry-After', '5')
    sendError(res, 503, 'job_store_unavailable', 'The job store is not answering; retry later.')
    return
  }
  const errorId = randomUUID()
  safeLog(logger, 'error', { err, errorId, requestId: requestIdOf(res) }, 'task-server: the job store failed')
  sendError(
    res,
    500,
    'internal_error',
    `The job store failed; look up error id ${errorId} in the server log.`,
    {
      error_id: errorId,
    },
  )
}
