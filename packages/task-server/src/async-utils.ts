/** Small promise helpers shared by the app and the lifecycle. */

/** A promise with its resolve function (Node 20 has no `Promise.withResolvers`). */
export interface Deferred<T> {
  readonly promise: Promise<T>
  resolve(value: T): void
}

/** Creates a {@link Deferred}. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/** Settles like `promise`, or rejects with `signal.reason` as soon as `signal` aborts. Removes its listener. */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise
  if (signal.aborted) {
    promise.catch(() => {})
    return Promise.reject(signal.reason)
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

/**
 * Resolves when `promise` settles (either way), after `ms`, or when `signal` aborts, whichever
 * comes first. Never rejects. Returns true when `promise` settled in time.
 */
export function settleWithin(promise: Promise<unknown>, ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let done = false
    const finish = (value: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      resolve(value)
    }
    const onAbort = () => finish(false)
    const timer = globalThis.setTimeout(() => finish(false), Math.max(0, ms))
    timer.unref()
    if (signal?.aborted) finish(false)
    else signal?.addEventListener('abort', onAbort, { once: true })
    promise.then(
      () => finish(true),
      () => finish(true),
    )
  })
}
