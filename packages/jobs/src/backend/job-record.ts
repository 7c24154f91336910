/**
 * One job of the local backend: its request, state, results so far and its event log (events get
 * `seq` 1, 2, 3, ... and go to live subscribers as they are appended).
 */
import { randomBytes } from 'node:crypto'
import type { JobRequest, PromptMessage } from './job-config'
import {
  eventType,
  isTerminalEvent,
  TERMINAL_STATUSES,
  type EventLevel,
  type EventName,
  type JobEventWire,
  type JobStatusWire,
  type UsageWire,
} from './wire-shapes'
import type { JobStatus } from '../wire'

/** The best candidate found so far. */
export interface BestSoFar {
  readonly candidateId: string
  readonly messages: readonly PromptMessage[]
  readonly text: string
  readonly score: number
}

/** What the optimizer has learned so far; read by the status route. */
export interface JobProgress {
  baseline?: number
  best?: BestSoFar
  generationsCompleted: number
  candidatesEvaluated: number
  rolloutsUsed: number
  budget?: number
  finishReason?: string
}

type Listener = (event: JobEventWire) => void

function iso(date: Date | undefined): string | null {
  return date === undefined ? null : date.toISOString()
}

/** A job: request, status, progress, events. */
export class JobRecord {
  readonly id = `pl_${randomBytes(12).toString('hex')}`
  readonly systemId = `sys_${randomBytes(8).toString('hex')}`
  readonly createdAt = new Date()
  readonly events: JobEventWire[] = []
  readonly progress: JobProgress = { generationsCompleted: 0, candidatesEvaluated: 0, rolloutsUsed: 0 }
  readonly usage: UsageWire = { calls: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }
  /** Aborted to cancel the job: in-flight rollouts and model calls stop. */
  readonly abort = new AbortController()
  status: JobStatus
  startedAt?: Date
  finishedAt?: Date
  error?: { message: string; code: string }
  /** The optimizer's run, once started. */
  run?: Promise<void>
  private readonly listeners = new Set<Listener>()

  constructor(readonly request: JobRequest) {
    this.status = request.autoStart ? 'queued' : 'pending'
  }

  /** Whether the job has ended (succeeded, failed or cancelled). */
  get terminal(): boolean {
    return TERMINAL_STATUSES.includes(this.status)
  }

  /** Appends an event with the next `seq` and hands it to every subscriber. */
  emit(
    name: EventName,
    data: Record<string, unknown>,
    options: { level?: EventLevel; message?: string } = {},
  ): JobEventWire {
    const now = new Date()
    const event: JobEventWire = {
      type: eventType(this.request.algorithm, name),
      seq: this.events.length + 1,
      job_id: this.id,
      ts: now.toISOString(),
      timestamp: now.toISOString(),
      timestamp_ms: now.valueOf(),
      level: options.level ?? 'info',
      message: options.message ?? name.replace(/[._]/g, ' '),
      data,
    }
    this.events.push(event)
    for (const listener of [...this.listeners]) listener(event)
    if (isTerminalEvent(event.type)) this.listeners.clear()
    return event
  }

  /** Calls `listener` with every event appended from now on; returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Events with `seq > sinceSeq`, at most `limit`. */
  eventsSince(sinceSeq: number, limit = Infinity): JobEventWire[] {
    return this.events.slice(Math.max(0, sinceSeq), Math.max(0, sinceSeq) + limit)
  }

  /** Ends the job with `status` and its terminal event. */
  finish(
    status: 'succeeded' | 'failed' | 'cancelled',
    data: Record<string, unknown>,
    error?: { message: string; code: string },
  ): void {
    if (this.terminal) return
    this.status = status
    this.finishedAt = new Date()
    if (error !== undefined) this.error = error
    const name =
      status === 'succeeded' ? 'job.completed' : status === 'failed' ? 'job.failed' : 'job.cancelled'
    this.emit(name, data, {
      level: status === 'failed' ? 'error' : 'info',
      ...(error !== undefined && { message: error.message }),
    })
  }

  /** The body of `GET …/jobs/{id}`. */
  statusBody(): JobStatusWire {
    const { best, baseline } = this.progress
    return {
      job_id: this.id,
      id: this.id,
      status: this.status,
      algorithm: this.request.algorithm,
      kind: this.request.kind,
      system: { id: this.systemId, name: this.request.systemName },
      created_at: this.createdAt.toISOString(),
      started_at: iso(this.startedAt),
      finished_at: iso(this.finishedAt),
      best_reward: best?.score ?? null,
      best_score: best?.score ?? null,
      best_candidate:
        best === undefined
          ? null
          : {
              candidate_id: best.candidateId,
              system_prompt: best.text,
              messages: best.messages.map((m) => ({ ...m })),
            },
      best_prompt: best?.text ?? null,
      baseline_reward: baseline ?? null,
      baseline_score: baseline ?? null,
      error: this.error?.message ?? null,
      error_code: this.error?.code ?? null,
      generations_completed: this.progress.generationsCompleted,
      candidates_evaluated: this.progress.candidatesEvaluated,
      rollouts_used: this.progress.rolloutsUsed,
      rollout_budget: this.progress.budget ?? null,
      finish_reason: this.progress.finishReason ?? null,
      usage: { ...this.usage },
      metadata: this.request.metadata,
      lever_summary: null,
      sensor_frames: [],
      lever_versions: {},
      best_lever_version: null,
    }
  }
}
