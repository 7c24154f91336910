/**
 * One rollout in flight, with an explicit state, and the registry of the runs that close() and
 * `DELETE /rollouts/:id` must be able to find.
 *
 * A run gets its id when it is created and keeps it: a sync run that outlives `syncTimeoutMs`
 * becomes a job under the same id by moving from `running` to `detached`, never by renaming.
 *
 * Plain fields and callbacks instead of promises, so a rollout whose handler answers synchronously
 * allocates no promise at all; {@link whenRun} makes promises only for the rare callers that wait.
 */
import { randomUUID } from 'node:crypto'

/**
 * - `running`: a caller waits for the answer (a sync rollout).
 * - `detached`: a job: the outcome goes to the job store (async from the start, or a sync run
 *   past `syncTimeoutMs`).
 * - `completed`, `failed`, `cancelled`: final; the answer is sent or the final record stored.
 */
export type RunState = 'running' | 'detached' | 'completed' | 'failed' | 'cancelled'

/** A final {@link RunState}. */
export type FinalRunState = 'completed' | 'failed' | 'cancelled'

/** One rollout in flight. */
export interface Run {
  /** Stable for the whole life of the run; the job id once (or if) the run is a job. */
  readonly id: string
  /** How the caller asked for it; the handler sees it as `ctx.mode`. */
  readonly mode: 'sync' | 'async'
  state: RunState
  /** Created on first use of `ctx.signal` (AbortSignals are costly to create on the hot path). */
  controller?: AbortController
  aborted: boolean
  abortReason?: unknown
  /** The user's handler has returned or settled (it may outlive the outcome when it ignores an abort). */
  handlerDone: boolean
  /** Set while the handler runs: settles the outcome at once when the run is aborted. */
  onAbort?: () => void
  /** Callers waiting for a change. */
  waiters?: { ready: () => boolean; resolve: () => void }[]
}

/** True for the states a run never leaves. */
export function isFinal(state: RunState): state is FinalRunState {
  return state === 'completed' || state === 'failed' || state === 'cancelled'
}

/** Aborts a run: fires the handler's signal and settles its outcome without waiting for the handler. */
export function abortRun(run: Run, reason: unknown): void {
  if (run.aborted) return
  run.aborted = true
  run.abortReason = reason
  run.controller?.abort(reason)
  run.onAbort?.()
}

/** The run's AbortSignal, created on first use (already aborted if the run was). */
export function runSignal(run: Run): AbortSignal {
  if (run.controller === undefined) {
    run.controller = new AbortController()
    if (run.aborted) run.controller.abort(run.abortReason)
  }
  return run.controller.signal
}

/** Resolves once `ready()` holds for the run (checked on every change of the run). */
export function whenRun(run: Run, ready: () => boolean): Promise<void> {
  if (ready()) return Promise.resolve()
  return new Promise<void>((resolve) => {
    ;(run.waiters ??= []).push({ ready, resolve })
  })
}

/** True once the run is final and its handler has returned: nothing of it is left running. */
export function isSettled(run: Run): boolean {
  return run.handlerDone && isFinal(run.state)
}

/** The runs in flight, by id, and the only place that changes a run's state. */
export interface RunRegistry {
  /** A new run; an async run is tracked at once, a sync one when it goes async ({@link track}). */
  create(mode: 'sync' | 'async'): Run
  /** Makes the run findable by close() and DELETE until it is settled. */
  track(run: Run): void
  /** The tracked run with this id. */
  get(id: string): Run | undefined
  /** Every tracked run. */
  inFlight(): Run[]
  /** The handler has returned or settled. */
  handlerDone(run: Run): void
  /** `running` → `detached`: the run goes on as a job under its own id. */
  detach(run: Run): void
  /** → a final state; a run that is already final keeps its state. */
  finish(run: Run, state: FinalRunState): void
}

/** Creates an empty {@link RunRegistry}. */
export function createRunRegistry(): RunRegistry {
  const tracked = new Map<string, Run>()

  /** Drops a settled run from the registry and wakes the waiters whose condition now holds. */
  function changed(run: Run): void {
    if (isSettled(run) && tracked.get(run.id) === run) tracked.delete(run.id)
    if (run.waiters === undefined) return
    run.waiters = run.waiters.filter((w) => {
      if (!w.ready()) return true
      w.resolve()
      return false
    })
  }

  return {
    create(mode) {
      const run: Run = {
        id: randomUUID(),
        mode,
        state: mode === 'async' ? 'detached' : 'running',
        aborted: false,
        handlerDone: false,
      }
      if (mode === 'async') tracked.set(run.id, run)
      return run
    },
    track(run) {
      if (!isSettled(run)) tracked.set(run.id, run)
    },
    get: (id) => tracked.get(id),
    inFlight: () => [...tracked.values()],
    handlerDone(run) {
      run.handlerDone = true
      changed(run)
    },
    detach(run) {
      if (run.state !== 'running') throw new Error(`cannot detach a run in state ${run.state}`)
      run.state = 'detached'
      changed(run)
    },
    finish(run, state) {
      if (!isFinal(run.state)) run.state = state
      changed(run)
    },
  }
}
