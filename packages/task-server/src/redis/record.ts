/** The schema a job record read back from Redis must pass: anything else is treated as missing. */
import { z } from 'zod'
import type { RolloutJob } from '../job-store'

const jobRecordSchema = z.object({
  id: z.string().min(1),
  status: z.enum(['pending', 'running', 'succeeded', 'failed', 'cancelled']),
  traceCorrelationId: z.string(),
  owner: z.string().optional(),
  createdAt: z.number().finite(),
  startedAt: z.number().finite().optional(),
  finishedAt: z.number().finite().optional(),
  // Validated by the rollout route before it was stored; here only its shape is checked.
  result: z.looseObject({ trace_correlation_id: z.string() }).optional(),
  error: z.object({ code: z.string(), message: z.string(), errorId: z.string().optional() }).optional(),
})

/** The record in `raw` when it is one of job `id`, else what is wrong with it. */
function check(id: string, raw: unknown): { job: RolloutJob } | { problem: string } {
  const parsed = jobRecordSchema.safeParse(raw)
  if (!parsed.success) {
    return {
      problem: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
    }
  }
  if (parsed.data.id !== id) return { problem: `holds job ${parsed.data.id}` }
  return { job: parsed.data as RolloutJob }
}

/**
 * Parses the stored JSON of job `id`, then lays the `{ finishedAt, error }` of a cancel over it
 * when there is one: the record, or an error message saying what is wrong (with either part).
 * @internal
 */
export function parseJobRecord(
  id: string,
  json: string,
  cancel?: string,
): { job: RolloutJob } | { problem: string } {
  let raw: unknown
  let patch: Pick<RolloutJob, 'finishedAt' | 'error'> | undefined
  try {
    raw = JSON.parse(json)
    if (cancel !== undefined) patch = JSON.parse(cancel) as typeof patch
  } catch {
    return { problem: 'not JSON' }
  }
  const stored = check(id, raw)
  if (!('job' in stored) || patch === undefined) return stored
  const { finishedAt, error } = patch ?? {}
  return check(id, { ...stored.job, status: 'cancelled', finishedAt, error })
}
