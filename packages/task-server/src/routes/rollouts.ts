/**
 * `GET /rollouts/:id` (a job's status) and `DELETE /rollouts/:id` (cancel a job), for the job's
 * owner only: anyone else gets the same 404 as for an unknown id, so a job's existence is not revealed.
 */
import type { RequestHandler, Response, Router } from 'express'
import { sendError } from '../http-errors'
import type { JobStore } from '../job-store'
import { ownerOf } from '../owner'
import { cancelReason, jobView, type Jobs } from '../rollout/jobs'
import { routerOf } from './route-table'

/** The router for `/rollouts/:id`. */
export function rolloutsRoutes(jobStore: JobStore, jobs: Jobs, auth: RequestHandler): Router {
  const notFound = (res: Response, id: string) =>
    sendError(res, 404, 'job_not_found', `No rollout job ${id}; it never existed or was evicted.`)

  /** The job with this id when the caller owns it. */
  const ownJob = async (res: Response, id: string) => {
    const job = await jobStore.get(id)
    return job !== undefined && job.owner === ownerOf(res) ? job : undefined
  }

  return routerOf((add) => {
    add('get', '/rollouts/:id', auth, async (req, res) => {
      const id = req.params.id as string
      const job = await ownJob(res, id)
      if (job === undefined) notFound(res, id)
      else res.json(jobView(job))
    })

    add('delete', '/rollouts/:id', auth, async (req, res) => {
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
    })
  })
}
