import type { JobEvent } from '@taskapp/jobs'
import { describe, expect, it } from 'vitest'
import { JobProgressTracker } from './job-progress'

function event(name: string, data: Record<string, unknown>): JobEvent {
  return {
    type: `learning.policy.gepa.${name}`,
    seq: undefined,
    id: undefined,
    jobId: 'pl_1',
    category: 'other',
    terminalStatus: undefined,
    data,
    message: undefined,
    level: undefined,
    timestamp: undefined,
    raw: {},
  }
}

describe('JobProgressTracker', () => {
  it('folds the GEPA events into generation, rollouts of the budget, best and baseline', () => {
    const tracker = new JobProgressTracker(performance.now())
    expect(tracker.snapshot()).toMatchObject({
      generation: undefined,
      bestScore: undefined,
      candidatesEvaluated: 0,
    })
    tracker.add(event('job.started', { num_generations: 3, rollout_budget: 300 }))
    expect(tracker.add(event('baseline', { accuracy: 0.25 }))).toMatchObject({
      generation: 0,
      generations: 3,
      rolloutBudget: 300,
      baselineScore: 0.25,
      bestScore: 0.25,
    })
    tracker.add(event('generation.started', { generation: 1 }))
    tracker.add(event('candidate.evaluated', { accuracy: 0.9 })) // a minibatch score, not a best
    tracker.add(event('progress', { rollouts_completed: 80, rollouts_total: 300, best_score: 0.3 }))
    const after = tracker.add(event('candidate.new_best', { best_score: 0.4 }))
    expect(after).toMatchObject({ generation: 1, rolloutsUsed: 80, bestScore: 0.4, candidatesEvaluated: 1 })
    // A lower score later never lowers the best.
    expect(tracker.add(event('generation.completed', { generation: 1, best_accuracy: 0.35 })).bestScore).toBe(
      0.4,
    )
    expect(tracker.add(event('job.completed', { best_score: 0.5, baseline_score: 0.25 }))).toMatchObject({
      bestScore: 0.5,
      baselineScore: 0.25,
    })
    expect(tracker.settle({ rollouts_used: 290 }).rolloutsUsed).toBe(290)
  })

  it('ignores events it does not know and values that are not numbers', () => {
    const tracker = new JobProgressTracker(performance.now())
    tracker.add(event('something.else', { generation: 7 }))
    tracker.add(event('progress', { rollouts_completed: 'ten', warning: 'health_check_failed' }))
    expect(tracker.snapshot()).toMatchObject({ generation: undefined, rolloutsUsed: undefined })
  })
})
