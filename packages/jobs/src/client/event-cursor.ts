/**
 * Events from the wire to {@link JobEvent}, and the cursor that makes every event count once: by
 * `seq` when the backend sends one (only events after the last `seq` seen pass), else by event id.
 */
import { eventCategory, finiteNumber, terminalStatusOf } from '../wire'
import { isPlainObject } from './merge'
import type { JobEvent } from './types'

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

/**
 * A {@link JobEvent} from one wire event (the JSON of an SSE `data:` line or one item of an events
 * page), or undefined when it is not an object with a string `type`. `streamId` is the SSE `id:`
 * field, used as the id when the event has no `id`/`event_id` of its own.
 */
export function toJobEvent(raw: unknown, streamId?: string): JobEvent | undefined {
  if (!isPlainObject(raw) || typeof raw.type !== 'string' || raw.type === '') return undefined
  const seq = finiteNumber(raw.seq)
  const ownId = raw.id ?? raw.event_id
  const id =
    typeof ownId === 'string' || typeof ownId === 'number' ? String(ownId) : stringOrUndefined(streamId)
  return {
    type: raw.type,
    seq: seq !== undefined && Number.isInteger(seq) ? seq : undefined,
    id,
    jobId: stringOrUndefined(raw.job_id),
    category: eventCategory(raw.type),
    terminalStatus: terminalStatusOf(raw.type),
    data: isPlainObject(raw.data) ? raw.data : {},
    message: stringOrUndefined(raw.message),
    level: stringOrUndefined(raw.level),
    timestamp: stringOrUndefined(raw.ts) ?? stringOrUndefined(raw.timestamp),
    raw,
  }
}

/**
 * Which events were seen. An event with a `seq` passes only when it is above the last `seq` seen
 * (events replayed after a reconnection are dropped, and `lastSeq` is where to resume); an event
 * without `seq` passes only when its id was not seen; an event with neither always passes.
 */
export class EventCursor {
  /** The highest `seq` seen (or the `sinceSeq` started from). */
  lastSeq: number | undefined
  private readonly ids = new Set<string>()

  constructor(sinceSeq?: number) {
    this.lastSeq = sinceSeq
  }

  /** Whether `event` is new; records it when it is. */
  accept(event: JobEvent): boolean {
    if (event.seq !== undefined) {
      if (this.lastSeq !== undefined && event.seq <= this.lastSeq) return false
      this.lastSeq = event.seq
      return true
    }
    if (event.id !== undefined) {
      if (this.ids.has(event.id)) return false
      this.ids.add(event.id)
    }
    return true
  }
}
