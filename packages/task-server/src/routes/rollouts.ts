/**
 * `GET /rollouts/:id` (a job's status) and `DELETE /rollouts/:id` (cancel a job), for the job's
 * owner only: anyone else gets the same 404 as for an unknown id, so a job's existence is not revealed.
 */
import type { Request, RequestHandler, Response, Router } from 'express'
import { sendError } from '../http-errors'
import type { JobStore } from '../job-store'
import type { TaskAppLogger } from '../logger'
import { ownerOf } from '../owner'
import { cancelReason, jobView, type Jobs } from '../rollout/jobs'
import { sendStoreFailure } from './job-store-errors'
import { routerOf } from './route-table'

/**
 * The router for `/rollouts/:id`. A store that fails answers 503 (`job_store_unavailable`, e.g. a
 * stalled Redis) or 500, see {@link sendStoreFailure}.
 */
export function rolloutsRoutes(
  jobStore: JobStore,
  jobs: Jobs,
  auth: RequestHandler,
  logger: TaskAppLogger,
): Router {
  const notFound = (res: Response, id: string) =>
    sendError(res, 404, 'job_not_found', `No rollout job ${id}; it never existed or was evicted.`)

  /** The job with this id when the caller owns it. */
  const ownJob = async (res: Response, id: string) => {
    const job = await jobStore.get(id)
    return job !== undefined && job.owner === ownerOf(res) ? job : undefined
  }

  /** `GET`: the job's record. */
  const read = async (req: Request, res: Response) => {
    const id = req.params.id as string
    const job = await ownJob(res, id)
    if (job === undefined) notFound(res, id)
    else res.json(jobView(job))
  }

  /** `DELETE`: cancels the job, wherever it runs; 409 when it had ended. */
  const cancel = async (req: Request, res: Response) => {
    const id = req.params.id as string
    if ((await ownJob(res, id)) === undefined) {
      notFound(res, id)
      return
    }
    const cancelled = await jobs.cancel(id, cancelReason(id))
    const job = await jobStore.get(id)
    if (job === undefined) {
      notFound(res, id)
      return
    }
    if (cancelled) {
      res.json(jobView(job))
      return
    }
    sendError(
      res,
      409,
      'job_already_finished',
      `Rollout job ${id} already ended (${job.status}); nothing to cancel.`,
      {
        status: job.status,
      },
    )
  }

  /** Answers a job-store failure of `handler` (503 or 500) instead of the generic error handler. */
  const guarded =
    (handler: (req: Request, res: Response) => Promise<void>): RequestHandler =>
    async (req, res) => {
      try {
        await handler(req, res)
      } catch (err) {
        sendStoreFailure(res, err, logger)
      }
    }

  return routerOf((add) => {
    add('get', '/rollouts/:id', auth, guarded(read))
    add('delete', '/rollouts/:id', auth, guarded(cancel))
  })
}
