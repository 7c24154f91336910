import type { JobEvent, JobResult } from '@taskapp/jobs'
import { describe, expect, it } from 'vitest'
import type { JobProgress } from '../job-progress'
import type { InProcessJobResult, InProcessJobUpdate } from '../run-job-options'
import { captureIo } from '../test-helpers'
import { jobPageUrl } from '../run-in-process-job'
import { OptimizeView, progressLine, resultTable } from './optimize-view'

const PROGRESS: JobProgress = {
  elapsedMs: 4200,
  generation: 2,
  generations: 6,
  rolloutsUsed: 180,
  rolloutBudget: 1200,
  bestScore: 0.34,
  baselineScore: 0.26,
  candidatesEvaluated: 4,
}

function update(
  phase: InProcessJobUpdate['phase'],
  extra: Partial<InProcessJobUpdate> = {},
): InProcessJobUpdate {
  return {
    phase,
    jobId: 'pl_1',
    taskAppUrl: 'http://127.0.0.1:9',
    tunnelMode: 'local',
    status: undefined,
    event: undefined,
    progress: PROGRESS,
    ...extra,
  }
}

const GENERATION_DONE = { type: 'learning.policy.gepa.generation.completed', seq: 7 } as JobEvent

const OUT: InProcessJobResult = {
  jobId: 'pl_1',
  status: 'succeeded',
  taskAppUrl: 'http://127.0.0.1:9',
  backendUrl: 'http://127.0.0.1:8000',
  health: { ok: true, checked: 'local', url: 'http://127.0.0.1:9', detail: '' },
  result: {
    baselineScore: 0.26,
    bestScore: 0.5,
    bestPrompt: 'Route it.\nIf the input mentions "refund", answer "billing".',
    generationsCompleted: 6,
    candidatesEvaluated: 12,
  } as JobResult,
}

describe('the optimize view', () => {
  it('one progress line: generation, rollouts of the budget, best and baseline, elapsed', () => {
    expect(progressLine(PROGRESS)).toBe('gen 2/6 · rollouts 180/1200 · best 0.340 (baseline 0.260) · 4.2 s')
    expect(progressLine({ ...PROGRESS, generation: 0 })).toMatch(/^baseline · /)
    expect(progressLine({ ...PROGRESS, generation: undefined, bestScore: undefined }, 300)).toBe(
      'starting · rollouts 180/1200 · best – · 0.3 s',
    )
  })

  it('the final table: baseline vs optimized with the gain, then the best prompt indented', () => {
    expect(resultTable(OUT, { ...PROGRESS, rolloutsUsed: 938 })).toBe(
      [
        'job pl_1 succeeded in 4.2 s: 938 rollouts of 1200, 6 generations, 12 candidates',
        '',
        '  prompt      validation score',
        '  baseline    0.260',
        '  optimized   0.500  (+0.240)',
        '',
        'best prompt:',
        '  Route it.',
        '  If the input mentions "refund", answer "billing".',
        '',
      ].join('\n'),
    )
  })

  it('--json: one JSON event per line on stdout, nothing on stderr', () => {
    const io = captureIo(true)
    const view = new OptimizeView(io, { json: true, progress: true })
    view.update(update('task-app-started'))
    view.update(update('submitted', { pageUrl: 'http://127.0.0.1:8000/jobs/pl_1' }))
    view.update(update('event', { event: GENERATION_DONE }))
    view.update(update('finished', { status: 'succeeded' }))
    view.result({ ...OUT, pageUrl: 'http://127.0.0.1:8000/jobs/pl_1' })
    const lines = io
      .out()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(lines.map((l) => l.event)).toEqual(['task_app_started', 'submitted', 'job_event', 'result'])
    expect(lines[1]).toMatchObject({ jobId: 'pl_1', pageUrl: 'http://127.0.0.1:8000/jobs/pl_1' })
    expect(lines[2]).toMatchObject({ type: GENERATION_DONE.type, seq: 7, generation: 2, rolloutsUsed: 180 })
    expect(lines[3]).toMatchObject({
      status: 'succeeded',
      bestScore: 0.5,
      pageUrl: 'http://127.0.0.1:8000/jobs/pl_1',
    })
    expect(io.err()).toBe('')
  })

  it('not a terminal: a line per step and per generation on stderr, the table on stdout', () => {
    const io = captureIo(false)
    const view = new OptimizeView(io, { json: false, progress: true })
    view.update(update('task-app-started'))
    view.update(update('submitted', { pageUrl: 'http://127.0.0.1:8000/jobs/pl_1' }))
    view.update(update('event', { event: { type: 'learning.policy.gepa.progress' } as JobEvent }))
    view.update(update('event', { event: GENERATION_DONE }))
    view.result(OUT)
    expect(io.err().split('\n')).toEqual([
      '✓ task app running at http://127.0.0.1:9 (local tunnel)',
      '✓ job pl_1 submitted',
      '  watch it live: http://127.0.0.1:8000/jobs/pl_1',
      '  gen 2/6 · rollouts 180/1200 · best 0.340 (baseline 0.260) · 4.2 s',
      '',
    ])
    expect(io.out()).toContain('  optimized   0.500  (+0.240)')
  })

  it('on a terminal: the live line is redrawn in place and cleared at the end', () => {
    const io = captureIo(true)
    const view = new OptimizeView(io, { json: false, progress: true })
    view.update(update('submitted'))
    view.update(update('event', { event: { type: 'learning.policy.gepa.progress' } as JobEvent }))
    const live = io.err().split('\r\x1b[2K').at(-1)
    expect(live).toMatch(/^⠿ gen 2\/6 · rollouts 180\/1200 · best 0\.340 \(baseline 0\.260\) · 4\.\d s$/)
    view.close()
    expect(io.err().endsWith('\r\x1b[2K')).toBe(true)
  })

  it('the job page URL: only for a loopback backend', () => {
    expect(jobPageUrl('http://127.0.0.1:8000', 'pl_1')).toBe('http://127.0.0.1:8000/jobs/pl_1')
    expect(jobPageUrl('http://localhost:8000/', 'pl_1')).toBe('http://localhost:8000/jobs/pl_1')
    expect(jobPageUrl('http://[::1]:8000', 'pl_1')).toBe('http://[::1]:8000/jobs/pl_1')
    expect(jobPageUrl('https://api.usesynth.ai', 'pl_1')).toBeUndefined()
    expect(jobPageUrl('http://10.0.0.5:8000', 'pl_1')).toBeUndefined()
  })
})
