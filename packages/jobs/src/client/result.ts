/**
 * What a job produced, gathered from its events (as synth-ai's clients read them) and its status
 * reply: best score and prompt, baseline, per-candidate scores, validation results.
 */
import { finiteNumber, normalizeStatus, objectAt, promptTextOf } from '../wire'
import { EventCursor } from './event-cursor'
import type { CandidateScore, JobEvent, JobResult, JobSnapshot, ValidationScore } from './types'

type Fields = Record<string, unknown>

/** The score an event gives: `accuracy`, else `reward`, `score`, `objectives.reward`. */
function scoreOf(d: Fields): number | undefined {
  return (
    finiteNumber(d.accuracy) ??
    finiteNumber(d.reward) ??
    finiteNumber(d.score) ??
    finiteNumber(objectAt(d, 'objectives')?.reward)
  )
}

function str(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value
  return typeof value === 'number' ? String(value) : undefined
}

function bool(value: unknown): boolean | undefined {
  return typeof value === 'boolean' ? value : undefined
}

/** The text of the first of `keys` that is a non-empty string. */
function firstText(d: Fields, keys: readonly string[]): string | undefined {
  for (const key of keys) {
    const v = d[key]
    if (typeof v === 'string' && v.trim() !== '') return v
  }
  return undefined
}

/** A status reply as a {@link JobSnapshot}. */
export function snapshotOf(jobId: string, body: Fields): JobSnapshot {
  const rawStatus = str(body.status) ?? str(body.state)
  const status = normalizeStatus(rawStatus)
  const errorKeys =
    status === 'failed'
      ? ['error', 'error_message', 'failure_reason', 'message']
      : ['error', 'error_message', 'failure_reason']
  return {
    jobId: str(body.job_id) ?? str(body.id) ?? jobId,
    status,
    rawStatus,
    bestScore: finiteNumber(body.best_reward) ?? finiteNumber(body.best_score),
    bestPrompt: promptTextOf(body.best_candidate) ?? promptTextOf(body.best_prompt),
    bestCandidate: body.best_candidate ?? body.best_prompt,
    error: firstText(body, errorKeys) ?? str(objectAt(body, 'error')?.message),
    generationsCompleted: finiteNumber(body.generations_completed),
    candidatesEvaluated: finiteNumber(body.candidates_evaluated),
    raw: body,
  }
}

type MutableCandidate = { -readonly [K in keyof CandidateScore]: CandidateScore[K] }

/** Gathers results from events; every event counts once (its own {@link EventCursor}). */
export class ResultAccumulator {
  private readonly cursor = new EventCursor()
  private readonly candidates: MutableCandidate[] = []
  private readonly byId = new Map<string, MutableCandidate>()
  private readonly validation: ValidationScore[] = []
  private bestScore: number | undefined
  private completedBest: number | undefined
  private bestPrompt: string | undefined
  private baselineScore: number | undefined
  private generations: number | undefined
  private totalCandidates: number | undefined
  private failure: string | undefined

  /** The `seq` to resume paging from. */
  get lastSeq(): number | undefined {
    return this.cursor.lastSeq
  }

  /** Whether any event was taken into account. */
  seenAny = false

  /** Takes one event into account (a repeated one is ignored). */
  add(event: JobEvent): void {
    if (!this.cursor.accept(event)) return
    this.seenAny = true
    const d: Fields = { ...event.raw, ...event.data }
    const type = event.type.toLowerCase()
    if (event.category === 'baseline') this.baselineScore = scoreOf(d) ?? finiteNumber(d.baseline_score)
    else if (type.includes('.candidate.new_best')) this.newBest(d)
    else if (event.category === 'candidate') this.candidate(d)
    else if (event.category === 'validation') this.validated(d)
    else if (event.category === 'generation' && type.includes('.generation.complete')) {
      this.generations = finiteNumber(d.generation) ?? (this.generations ?? 0) + 1
    } else if (event.category === 'complete') {
      this.completedBest = finiteNumber(d.best_score) ?? this.completedBest
      this.baselineScore ??= finiteNumber(d.baseline_score)
      this.totalCandidates = finiteNumber(d.total_candidates) ?? this.totalCandidates
    }
    if (event.terminalStatus === 'failed' || event.terminalStatus === 'cancelled') {
      this.failure = firstText(d, ['reason', 'error', 'message']) ?? event.message
    }
  }

  private newBest(d: Fields): void {
    this.bestScore = finiteNumber(d.best_score) ?? scoreOf(d) ?? this.bestScore
    this.bestPrompt = promptTextOf(d.best_prompt) ?? promptTextOf(d.best_candidate) ?? this.bestPrompt
  }

  private candidate(d: Fields): void {
    const candidateId = str(d.candidate_id) ?? str(d.version_id)
    const known = candidateId === undefined ? undefined : this.byId.get(candidateId)
    const entry: MutableCandidate = known ?? {
      candidateId,
      score: undefined,
      accepted: undefined,
      generation: undefined,
      parentId: undefined,
      isPareto: undefined,
      validationScore: undefined,
      rank: undefined,
    }
    entry.score = scoreOf(d) ?? entry.score
    entry.accepted = bool(d.accepted) ?? entry.accepted
    entry.generation = finiteNumber(d.generation) ?? entry.generation
    entry.parentId = str(d.parent_id) ?? entry.parentId
    entry.isPareto = bool(d.is_pareto) ?? entry.isPareto
    if (known === undefined) {
      this.candidates.push(entry)
      if (candidateId !== undefined) this.byId.set(candidateId, entry)
    }
  }

  private validated(d: Fields): void {
    const candidateId = str(d.candidate_id) ?? str(d.version_id)
    const score = scoreOf(d)
    const rank = finiteNumber(d.rank)
    this.validation.push({ candidateId, rank, score })
    const entry = candidateId === undefined ? undefined : this.byId.get(candidateId)
    if (entry !== undefined) {
      entry.validationScore = score ?? entry.validationScore
      entry.rank = rank ?? entry.rank
    }
  }

  /** The result: the status reply first, the events for what it lacks. */
  build(snapshot: JobSnapshot): JobResult {
    const scores = this.candidates.map((c) => c.score).filter((s): s is number => s !== undefined)
    const eventsBest =
      this.bestScore ?? this.completedBest ?? (scores.length > 0 ? Math.max(...scores) : undefined)
    return {
      jobId: snapshot.jobId,
      status: snapshot.status,
      bestScore: snapshot.bestScore ?? eventsBest,
      bestPrompt: snapshot.bestPrompt ?? this.bestPrompt,
      baselineScore: this.baselineScore,
      candidates: this.candidates.map((c) => ({ ...c })),
      validation: [...this.validation],
      generationsCompleted: snapshot.generationsCompleted ?? this.generations,
      candidatesEvaluated:
        snapshot.candidatesEvaluated ?? this.totalCandidates ?? (this.candidates.length || undefined),
      error: snapshot.error ?? this.failure,
      raw: snapshot.raw,
    }
  }
}
