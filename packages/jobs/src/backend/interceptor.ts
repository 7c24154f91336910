/**
 * The interceptor the task app calls as its model: `POST /interceptor/<candidate-id>[/<rollout-id>]/v1/chat/completions`.
 * It swaps the candidate's text in for the optimized system message, forwards the call upstream,
 * records usage and, per rollout, the input and answer the reflection will show.
 */
import { Readable } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { safeLog, type Logger } from '@taskapp/core'
import { HttpError, isObject, readJson } from './http'
import { swapPrompt, textOf, type CompiledPattern, type WireMessage } from './prompt-template'
import { postChat, replyContent, replyUsage, UpstreamUnreachable, type UpstreamOptions } from './upstream'
import type { UsageWire } from './wire-shapes'

/** What one rollout sent to the model and got back. */
export interface Capture {
  input: string
  output: string
  calls: number
}

/** What the interceptor knows of a job. */
export interface InterceptedJob {
  readonly id: string
  readonly optimized: CompiledPattern
  readonly usage: UsageWire
  readonly signal: AbortSignal
  /** Called when a call carried no message matching the optimized pattern. */
  onUnmatched(candidateId: string): void
}

/** A candidate the interceptor serves. */
export interface InterceptedCandidate {
  readonly id: string
  /** The candidate's text for the optimized message. */
  readonly text: string
  readonly job: InterceptedJob
  /** Per rollout id (the trace correlation id in the URL). */
  readonly captures: Map<string, Capture>
}

/** The non-system messages of a call, as the reflection shows them. */
function inputOf(messages: readonly WireMessage[]): string {
  const rest = messages.filter((m) => m.role !== 'system' && m.role !== 'developer')
  if (rest.length === 1) return textOf(rest[0]?.content) ?? ''
  return rest.map((m) => `${String(m.role)}: ${textOf(m.content) ?? ''}`).join('\n')
}

/** Candidate registry and request handler of the interceptor. */
export class Interceptor {
  private readonly candidates = new Map<string, InterceptedCandidate>()

  constructor(
    private readonly upstream: UpstreamOptions,
    private readonly logger: Logger,
  ) {}

  /** Serves `candidate` from now on. */
  register(candidate: InterceptedCandidate): void {
    this.candidates.set(candidate.id, candidate)
  }

  /** Stops serving a candidate (its URL answers 404 afterwards). */
  unregister(candidateId: string): void {
    this.candidates.delete(candidateId)
  }

  /** Stops serving every candidate of a job. */
  unregisterJob(jobId: string): void {
    for (const [id, candidate] of this.candidates) if (candidate.job.id === jobId) this.candidates.delete(id)
  }

  /** Handles one chat call for `candidateId` (and rollout `rolloutId`, when the URL names one). */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    candidateId: string,
    rolloutId: string | undefined,
  ): Promise<void> {
    const candidate = this.candidates.get(candidateId)
    if (candidate === undefined) {
      throw new HttpError(
        404,
        'unknown_candidate',
        `No live candidate "${candidateId}": its job has ended or never existed.`,
      )
    }
    const body = await readJson(req, 8 * 1_048_576)
    if (!isObject(body) || !Array.isArray(body.messages)) {
      throw new HttpError(400, 'invalid_request_error', '"messages" must be an array of chat messages.')
    }
    const { messages, swapped } = swapPrompt(
      body.messages as WireMessage[],
      candidate.job.optimized,
      candidate.text,
    )
    if (swapped === 0) candidate.job.onUnmatched(candidateId)
    const gone = new AbortController()
    const onClose = () => gone.abort(new Error('The task app closed the call.'))
    res.once('close', onClose)
    try {
      const signal = AbortSignal.any([candidate.job.signal, gone.signal])
      const response = await this.forward({ ...body, messages }, signal)
      if (body.stream === true && response.body !== null) {
        res.writeHead(response.status, {
          'content-type': response.headers.get('content-type') ?? 'text/event-stream',
        })
        Readable.fromWeb(response.body as WebReadableStream<Uint8Array>).pipe(res)
        return
      }
      const text = await response.text()
      this.record(candidate, rolloutId, messages, response.ok ? text : undefined)
      res.writeHead(response.status, {
        'content-type': response.headers.get('content-type') ?? 'application/json',
      })
      res.end(text)
    } finally {
      res.off('close', onClose)
    }
  }

  private async forward(body: Record<string, unknown>, signal: AbortSignal): Promise<Response> {
    try {
      return await postChat(this.upstream, body, signal)
    } catch (error) {
      if (error instanceof UpstreamUnreachable) {
        safeLog(this.logger, 'warn', { err: error.message }, 'interceptor: upstream unreachable')
        throw new HttpError(502, 'upstream_unreachable', error.message)
      }
      if (signal.aborted) {
        throw new HttpError(503, 'job_ended', 'The job of this candidate was cancelled or has ended.')
      }
      throw error
    }
  }

  private record(
    candidate: InterceptedCandidate,
    rolloutId: string | undefined,
    messages: readonly WireMessage[],
    replyText: string | undefined,
  ): void {
    let json: unknown
    try {
      json = replyText === undefined ? undefined : JSON.parse(replyText)
    } catch {
      json = undefined
    }
    const usage = replyUsage(json)
    const total = candidate.job.usage
    total.calls += 1
    total.prompt_tokens += usage.prompt
    total.completion_tokens += usage.completion
    total.total_tokens += usage.total
    if (rolloutId === undefined) return
    const previous = candidate.captures.get(rolloutId)
    candidate.captures.set(rolloutId, {
      input: inputOf(messages),
      output: replyContent(json) ?? '',
      calls: (previous?.calls ?? 0) + 1,
    })
  }
}
