/**
 * Creating a job: the newest generation first (`POST /api/v1/offline/jobs`), an older create route
 * only when the one before answered 404 or 405. Creating is not idempotent, so any other answer
 * (5xx included) or no answer at all stops there: a job is never created twice.
 */
import { JobsError, JobsErrorCode } from '../errors'
import { CREATE_ORDER, WIRE_ROUTES, legacyCreateBody, offlineCreateBody, type WireGeneration } from '../wire'
import type { JobPlan } from './config'
import { checkReply, protocolError, send, type HttpContext, type SendInput } from './http'
import type { SubmittedJob } from './types'

const WORKER_TOKEN_HEADER = 'x-synthtunnel-worker-token'

function bodyFor(generation: WireGeneration, plan: JobPlan, workerToken: string | undefined): unknown {
  if (generation === 'g3') return offlineCreateBody(plan)
  return legacyCreateBody(plan, generation === 'g2' && plan.synthTunnel ? workerToken : undefined)
}

function jobIdOf(json: unknown, generation: WireGeneration): string | undefined {
  if (typeof json !== 'object' || json === null) return undefined
  const body = json as Record<string, unknown>
  const id = generation === 'g3' ? body.job_id : (body.job_id ?? body.id)
  return typeof id === 'string' && id !== '' ? id : undefined
}

/** Creates the job and says with which generation; throws a `JobsError` (or `signal.reason`). */
export async function createJob(
  http: HttpContext,
  plan: JobPlan,
  workerToken: string | undefined,
  signal?: AbortSignal,
): Promise<SubmittedJob> {
  const headers: Record<string, string> =
    plan.synthTunnel && workerToken !== undefined ? { [WORKER_TOKEN_HEADER]: workerToken } : {}
  let lastStatus = 404
  for (const generation of CREATE_ORDER) {
    const input: SendInput = {
      method: 'POST',
      path: WIRE_ROUTES[generation].create(plan.algorithm),
      body: bodyFor(generation, plan, workerToken),
      headers,
      signal,
      what: 'create the job',
    }
    const reply = await send(http, input)
    if (reply.status === 404 || reply.status === 405) {
      lastStatus = reply.status
      continue
    }
    checkReply(reply, input)
    const jobId = jobIdOf(reply.json, generation)
    if (jobId === undefined) {
      throw protocolError(
        input,
        generation === 'g3' ? '{ "job_id": "..." }' : '{ "job_id" } or { "id" }',
        reply,
      )
    }
    return { jobId, generation }
  }
  const tried = CREATE_ORDER.map((g) => `POST ${WIRE_ROUTES[g].create(plan.algorithm)}`).join(', ')
  throw new JobsError(
    JobsErrorCode.BackendError,
    `No create route of the job backend at ${http.root} exists: ${tried} all answered 404 or 405. Check that backendUrl points at a Synth job backend.`,
    { status: lastStatus },
  )
}
