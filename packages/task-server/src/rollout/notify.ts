/** The `onRolloutComplete` hook: called after every rollout, its failures logged and ignored. */
import type { RolloutCompleteEvent, RolloutCompleteHook } from '../config'
import { safeLog, type TaskAppLogger } from '../logger'

/** Calls the hook in the background; `pending()` is what close() waits for. */
export interface CompletionNotifier {
  notify(event: RolloutCompleteEvent): void
  pending(): Promise<void>[]
}

/** Creates the notifier; with no hook, `notify` does nothing. */
export function createCompletionNotifier(
  hook: RolloutCompleteHook | undefined,
  logger: TaskAppLogger,
): CompletionNotifier {
  const pending = new Set<Promise<void>>()
  return {
    notify(event) {
      if (hook === undefined) return
      const p: Promise<void> = Promise.resolve()
        .then(() => hook(event))
        .catch((err: unknown) => {
          safeLog(
            logger,
            'warn',
            { err, requestId: event.requestId },
            'task-server: onRolloutComplete failed (ignored)',
          )
        })
        .finally(() => pending.delete(p))
      pending.add(p)
    },
    pending: () => [...pending],
  }
}
