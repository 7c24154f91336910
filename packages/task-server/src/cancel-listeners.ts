/** Listeners waiting for jobs to be cancelled, by job id: the watcher bookkeeping of the built-in stores. */

/** What {@link createCancelListeners} returns. @internal */
export interface CancelListeners {
  /** Number of job ids watched. */
  readonly size: number
  /** The job ids watched. */
  ids(): string[]
  /** Adds a listener for `id`; returns the function that removes it. */
  add(id: string, listener: () => void): () => void
  /** Calls and forgets every listener of `id`. */
  fire(id: string): void
  /** Forgets the listeners of `id` without calling them. */
  forget(id: string): void
  /** Forgets every listener. */
  clear(): void
}

/**
 * Creates an empty {@link CancelListeners}; `onEmpty` runs each time the last watched id goes.
 * @internal shared by the memory and Redis stores.
 */
export function createCancelListeners(onEmpty: () => void = () => {}): CancelListeners {
  const byId = new Map<string, Set<() => void>>()
  return {
    get size() {
      return byId.size
    },
    ids: () => [...byId.keys()],
    add(id, listener) {
      let own = byId.get(id)
      if (own === undefined) byId.set(id, (own = new Set()))
      own.add(listener)
      const listeners = own
      return () => {
        listeners.delete(listener)
        if (listeners.size === 0 && byId.get(id) === listeners) byId.delete(id)
        if (byId.size === 0) onEmpty()
      }
    },
    fire(id) {
      const listeners = byId.get(id)
      byId.delete(id)
      for (const listener of listeners ?? []) listener()
      if (byId.size === 0) onEmpty()
    },
    forget(id) {
      byId.delete(id)
    },
    clear() {
      byId.clear()
    },
  }
}
