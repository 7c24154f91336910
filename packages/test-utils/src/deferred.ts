/** A promise with its settle functions, created apart from the code that settles it. */
export interface Deferred<T> {
  readonly promise: Promise<T>
  resolve(value: T): void
  reject(reason: unknown): void
}

/**
 * A promise and its `resolve` / `reject` (Node 20 has no `Promise.withResolvers`). Use it to
 * hold a handler until the test releases it, or to learn that something happened.
 *
 * @example
 * ```ts
 * const release = deferred()
 * await using server = await listenLoopback(async (_req, res) => {
 *   await release.promise
 *   res.end('late')
 * })
 * const pending = fetch(server.url)
 * release.resolve()
 * expect(await (await pending).text()).toBe('late')
 * ```
 */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (reason: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}
