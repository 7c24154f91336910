/**
 * Polls `condition` until it is true or `timeoutMs` passes; resolves `true` / `false`.
 * Starts at 2 ms between checks, doubling to 100 ms. Rejects with `signal.reason` on abort.
 * @internal
 */
export async function pollUntil(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs, signal }: { timeoutMs: number; signal?: AbortSignal | undefined },
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  let wait = 2
  for (;;) {
    signal?.throwIfAborted()
    if (await condition()) return true
    const left = deadline - performance.now()
    if (left <= 0) return false
    await delay(Math.min(wait, left), signal)
    wait = Math.min(wait * 2, 100)
  }
}

/**
 * A cancellable delay that reads `setTimeout` at call time (fake timers work). It keeps the
 * process alive, as any awaited wait must; background loops pass `unref: true`. @internal
 */
export function delay(ms: number, signal?: AbortSignal, { unref = false } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal!.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    if (unref) timer.unref?.()
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
