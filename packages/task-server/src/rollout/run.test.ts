import { describe, expect, test } from 'vitest'
import { abortRun, createRunRegistry, isSettled, runSignal, whenRun } from './run'

describe('runs and their states', () => {
  test('a sync run turned into a job keeps its id: running → detached → final, findable throughout', () => {
    const runs = createRunRegistry()
    const run = runs.create('sync')
    const id = run.id
    expect(run.state).toBe('running')
    expect(runs.get(id)).toBeUndefined() // a sync run is tracked only once its handler goes async
    runs.track(run)
    expect(runs.get(id)).toBe(run)
    runs.detach(run)
    expect(run).toMatchObject({ id, state: 'detached' })
    expect(runs.get(id)).toBe(run)
    runs.handlerDone(run)
    expect(runs.get(id)).toBe(run) // the final record is not stored yet
    runs.finish(run, 'completed')
    expect(run).toMatchObject({ id, state: 'completed' })
    expect(runs.get(id)).toBeUndefined()
  })

  test('an async run starts detached and tracked', () => {
    const runs = createRunRegistry()
    const run = runs.create('async')
    expect(run.state).toBe('detached')
    expect(runs.inFlight()).toEqual([run])
  })

  test('final states are final; only a running run can be detached', () => {
    const runs = createRunRegistry()
    const run = runs.create('sync')
    runs.finish(run, 'cancelled')
    runs.finish(run, 'completed')
    expect(run.state).toBe('cancelled')
    expect(() => runs.detach(run)).toThrow(/cancelled/)
    expect(() => runs.detach(runs.create('async'))).toThrow(/detached/)
  })

  test('whenRun resolves once the condition holds; a run stays tracked until its handler returned too', async () => {
    const runs = createRunRegistry()
    const run = runs.create('async')
    const settled = whenRun(run, () => isSettled(run))
    runs.finish(run, 'cancelled')
    expect(runs.get(run.id)).toBe(run)
    runs.handlerDone(run)
    await settled
    expect(runs.get(run.id)).toBeUndefined()
  })

  test('the signal is created on first use, already aborted after an abort', () => {
    const run = createRunRegistry().create('sync')
    const reason = new Error('stop')
    abortRun(run, reason)
    expect(run.controller).toBeUndefined()
    expect(runSignal(run)).toMatchObject({ aborted: true, reason })
  })
})
