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

/**
 * Parses the stored JSON of job `id`: the record, or an error message saying what is wrong.
 * @internal
 */
export function parseJobRecord(id: string, json: string): { job: RolloutJob } | { problem: string } {
  let raw: unknown
  try {
    raw = JSON.parse(json)
  } catch {
    return { problem: 'not JSON' }
  }
  const parsed = jobRecordSchema.safeParse(raw)
  if (!parsed.success) {
    return {
      problem: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '),
    }
  }
  if (parsed.data.id !== id) return { problem: `holds job ${parsed.data.id}` }
  return { job: parsed.data as RolloutJob }
}
