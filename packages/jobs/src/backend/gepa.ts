/**
 * A small GEPA-style search, run for real against a task app: baseline on the validation seeds;
 * then, per generation, children proposed by reflection (the upstream model rewrites a Pareto-front
 * parent's prompt given its failed minibatch examples), each scored on the same train minibatch as
 * its parent, accepted when it beats the parent there, then validated; the best validated
 * candidate wins. Every rollout counts against `rollout.budget`.
 */
import { randomBytes } from 'node:crypto'
import { safeLog, type Logger } from '@taskapp/core'
import { JobsError } from '../errors'
import { evaluate, meanReward, rolloutCost, type Candidate, type Evaluator } from './evaluate'
import type { Interceptor } from './interceptor'
import type { GepaSpec } from './job-config'
import type { JobRecord } from './job-record'
import { createRng, paretoFront, sampleFront, shuffle, type ScoredCandidate } from './pareto'
import { compilePattern, type CompiledPattern } from './prompt-template'
import { proposePrompt } from './reflection'
import { checkHealth, type TaskAppAccess } from './task-app-client'
import type { UpstreamOptions } from './upstream'

/** What a GEPA run needs. */
export interface GepaContext {
  readonly job: JobRecord
  readonly spec: GepaSpec
  readonly access: TaskAppAccess
  readonly interceptor: Interceptor
  /** `<backend public url>/interceptor`. */
  readonly interceptorBase: string
  readonly upstream: UpstreamOptions
  readonly logger: Logger
}

/** The result of a finished run. */
export interface GepaOutcome {
  readonly baseline: Candidate
  readonly best: Candidate
  readonly pool: readonly Candidate[]
  readonly proposed: number
  readonly finishReason: 'completed' | 'budget_exhausted'
}

interface RunState {
  readonly ctx: GepaContext
  readonly ev: Evaluator
  readonly rng: () => number
  readonly optimized: CompiledPattern
  readonly pool: Candidate[]
  readonly trainOrder: number[]
  cursor: number
  best?: Candidate
  warnedUnmatched: boolean
}

function newCandidate(state: RunState, text: string, generation: number, parentId?: string): Candidate {
  const { spec, job, interceptor } = state.ctx
  const id = `cand_${randomBytes(8).toString('hex')}`
  const messages = spec.initialMessages.map((m, i) =>
    i === spec.optimizedIndex ? { ...m, pattern: text } : m,
  )
  const intercepted = {
    id,
    text,
    captures: new Map(),
    job: {
      id: job.id,
      optimized: state.optimized,
      usage: job.usage,
      signal: job.abort.signal,
      onUnmatched: () => warnUnmatched(state),
    },
  }
  interceptor.register(intercepted)
  return {
    id,
    text,
    messages,
    generation,
    results: new Map(),
    intercepted,
    ...(parentId !== undefined && { parentId }),
  }
}

function warnUnmatched(state: RunState): void {
  if (state.warnedUnmatched) return
  state.warnedUnmatched = true
  const message =
    'A chat call of the task app had no message matching the initial_prompt system pattern, so the candidate text could not be swapped in; make initial_prompt.messages[].pattern equal the prompt the task app sends (use {wildcards} for the parts that vary).'
  state.ctx.job.emit('progress', { warning: 'prompt_not_matched' }, { level: 'warning', message })
  safeLog(state.ctx.logger, 'warn', { job: state.ctx.job.id }, message)
}

function emitProgress(state: RunState): void {
  const { job } = state.ctx
  job.progress.rolloutsUsed = state.ev.budget.used
  job.emit('progress', {
    rollouts_completed: state.ev.budget.used,
    rollouts_total: Number.isFinite(state.ev.budget.limit) ? state.ev.budget.limit : null,
    best_score: state.best?.validationScore ?? null,
    baseline_score: job.progress.baseline ?? null,
  })
}

/** Validates `candidate` on every validation seed; records the score and updates the best. */
async function validate(state: RunState, candidate: Candidate): Promise<number> {
  const records = await evaluate(state.ev, candidate, state.ctx.spec.validationSeeds)
  const score = meanReward(records)
  candidate.validationScore = score
  state.pool.push(candidate)
  return score
}

function updateBest(state: RunState, candidate: Candidate): void {
  const { job } = state.ctx
  if (state.best !== undefined && (candidate.validationScore ?? 0) <= (state.best.validationScore ?? 0))
    return
  state.best = candidate
  const score = candidate.validationScore ?? 0
  job.progress.best = { candidateId: candidate.id, messages: candidate.messages, text: candidate.text, score }
  if (candidate.generation === 0) return
  job.emit('candidate.new_best', {
    candidate_id: candidate.id,
    generation: candidate.generation,
    best_score: score,
    accuracy: score,
    best_prompt: candidate.text,
    best_candidate: { candidate_id: candidate.id, system_prompt: candidate.text },
  })
}

function nextMinibatch(state: RunState): number[] {
  const size = Math.min(state.ctx.spec.minibatchSize, state.trainOrder.length)
  const batch: number[] = []
  while (batch.length < size) {
    batch.push(state.trainOrder[state.cursor % state.trainOrder.length] as number)
    state.cursor += 1
  }
  return batch
}

/** The validated candidates with their reward per validation seed. */
function scoredPool(state: RunState): ScoredCandidate[] {
  const seeds = state.ctx.spec.validationSeeds
  return state.pool.map((c) => ({
    id: c.id,
    scores: new Map(seeds.map((s) => [s, c.results.get(s)?.reward ?? 0])),
  }))
}

function selectParent(state: RunState): Candidate {
  const front = paretoFront(scoredPool(state), state.ctx.spec.validationSeeds)
  const id = sampleFront(front, state.rng)
  return state.pool.find((c) => c.id === id) as Candidate
}

function modelOf(ctx: GepaContext): string {
  const model = ctx.spec.policyConfig.model
  return ctx.upstream.model ?? (typeof model === 'string' && model !== '' ? model : 'gpt-4o-mini')
}

/** One child: 'budget' when the budget cannot pay for it, else whether it was proposed and accepted. */
async function proposeChild(
  state: RunState,
  generation: number,
): Promise<'budget' | 'skipped' | 'rejected' | 'accepted'> {
  const { ctx, ev } = state
  const parent = selectParent(state)
  const batch = nextMinibatch(state)
  const need = rolloutCost(parent, batch) + batch.length + ctx.spec.validationSeeds.length
  if (ev.budget.used + need > ev.budget.limit) return 'budget'
  const parentRecords = await evaluate(ev, parent, batch)
  if (parentRecords.every((r) => r.reward >= 1)) return 'skipped'
  const text = await proposePrompt({
    upstream: ctx.upstream,
    model: modelOf(ctx),
    parentText: parent.text,
    records: parentRecords,
    usage: ctx.job.usage,
    signal: ctx.job.abort.signal,
  })
  if (state.pool.some((c) => c.text === text)) return 'skipped'
  const child = newCandidate(state, text, generation, parent.id)
  const childScore = meanReward(await evaluate(ev, child, batch))
  const parentScore = meanReward(parentRecords)
  const accepted = childScore > parentScore
  ctx.job.progress.candidatesEvaluated += 1
  ctx.job.emit('candidate.evaluated', {
    candidate_id: child.id,
    parent_id: parent.id,
    generation,
    accuracy: childScore,
    reward: childScore,
    parent_accuracy: parentScore,
    accepted,
    minibatch_seeds: batch,
    prompt: text,
    rollouts_used: ev.budget.used,
  })
  if (!accepted) {
    ctx.interceptor.unregister(child.id)
    return 'rejected'
  }
  const score = await validate(state, child)
  ctx.job.emit('validation.scored', {
    candidate_id: child.id,
    generation,
    accuracy: score,
    reward: score,
    rollouts_used: ev.budget.used,
  })
  emitFrontier(state)
  updateBest(state, child)
  return 'accepted'
}

function emitFrontier(state: RunState): void {
  const front = paretoFront(scoredPool(state), state.ctx.spec.validationSeeds)
  state.ctx.job.emit('frontier_updated', {
    frontier: front.map((f) => f.id),
    frontier_scores: Object.fromEntries(state.pool.map((c) => [c.id, c.validationScore ?? 0])),
    best_score: Math.max(...state.pool.map((c) => c.validationScore ?? 0)),
  })
}

/** Checks the task app's health as the job's `rollout_health_check_mode` says. */
async function preflight(ctx: GepaContext): Promise<void> {
  if (ctx.spec.healthCheck === 'off') return
  const health = await checkHealth(ctx.access, ctx.job.abort.signal)
  if (health.ok) return
  const message = `The task app's GET ${ctx.access.url}/health answered ${health.detail}.`
  if (ctx.spec.healthCheck === 'strict')
    throw new JobsError(
      'TASKAPP_ERR_JOBS_TASK_APP_UNHEALTHY',
      `${message} (rollout_health_check_mode = "strict")`,
    )
  ctx.job.emit(
    'progress',
    { warning: 'health_check_failed', detail: health.detail },
    { level: 'warning', message },
  )
}

/** Runs the generations; returns why the search stopped. */
async function search(
  state: RunState,
): Promise<{ proposed: number; finishReason: GepaOutcome['finishReason'] }> {
  const { ctx } = state
  let proposed = 0
  for (let generation = 1; generation <= ctx.spec.generations; generation++) {
    ctx.job.emit('generation.started', { generation })
    let accepted = 0
    let out = 0
    for (let child = 0; child < ctx.spec.childrenPerGeneration; child++) {
      const result = await proposeChild(state, generation)
      if (result === 'budget') return { proposed, finishReason: 'budget_exhausted' }
      if (result !== 'skipped') out += 1
      if (result === 'accepted') accepted += 1
      emitProgress(state)
    }
    proposed += out
    ctx.job.progress.generationsCompleted = generation
    ctx.job.emit('generation.completed', {
      generation,
      best_accuracy: state.best?.validationScore ?? 0,
      candidates_proposed: out,
      candidates_accepted: accepted,
    })
  }
  return { proposed, finishReason: 'completed' }
}

/**
 * Runs GEPA for `ctx.job`: emits its events and progress, returns the outcome. Rejects with a
 * {@link JobsError} when the job cannot go on (task app refuses every rollout, reflection fails, the
 * budget cannot pay for the baseline), with the abort reason when the job is cancelled.
 */
export async function runGepa(ctx: GepaContext): Promise<GepaOutcome> {
  const { spec, job } = ctx
  const limit = spec.budget ?? Infinity
  job.progress.budget = spec.budget
  if (limit < spec.validationSeeds.length) {
    throw new JobsError(
      'TASKAPP_ERR_JOBS_INVALID_CONFIG',
      `prompt_learning.gepa.rollout.budget (${limit}) is smaller than the ${spec.validationSeeds.length} validation seeds the baseline needs; raise the budget or use fewer validation seeds.`,
    )
  }
  const rng = createRng(spec.randomSeed)
  const state: RunState = {
    ctx,
    ev: {
      spec,
      access: ctx.access,
      budget: { limit, used: 0 },
      interceptorBase: ctx.interceptorBase,
      signal: job.abort.signal,
    },
    rng,
    optimized: compilePattern(
      spec.initialMessages[spec.optimizedIndex] as GepaSpec['initialMessages'][number],
      spec.wildcards,
    ),
    pool: [],
    trainOrder: shuffle(spec.trainSeeds, rng),
    cursor: 0,
    warnedUnmatched: false,
  }
  await preflight(ctx)
  const baseline = newCandidate(state, spec.initialMessages[spec.optimizedIndex]?.pattern ?? '', 0)
  const baselineScore = await validate(state, baseline)
  job.progress.baseline = baselineScore
  updateBest(state, baseline)
  job.emit('baseline', {
    candidate_id: baseline.id,
    accuracy: baselineScore,
    baseline_score: baselineScore,
    score: baselineScore,
    prompt: baseline.text,
    rollouts_used: state.ev.budget.used,
  })
  emitProgress(state)
  const { proposed, finishReason } = await search(state)
  job.progress.finishReason = finishReason
  return { baseline, best: state.best ?? baseline, pool: state.pool, proposed, finishReason }
}
