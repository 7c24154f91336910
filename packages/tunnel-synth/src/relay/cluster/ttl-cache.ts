/** A small map whose entries expire: the cluster's short-lived lookups of leases and presence. */

/** How long a node trusts a lease or presence record it read from Redis (failover makes it stale at most this long). */
export const LOOKUP_CACHE_MS = 500
/** Entries kept at most; past it the cache starts over (a burst of distinct routes costs lookups, not memory). */
const MAX_ENTRIES = 10_000

/** Entries valid for `ttlMs` after they were set (times are `performance.now()`, passed in). */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; at: number }>()

  constructor(private readonly ttlMs: number) {}

  get(key: string, now: number): V | undefined {
    const e = this.entries.get(key)
    if (e === undefined) return undefined
    if (now - e.at <= this.ttlMs) return e.value
    this.entries.delete(key)
    return undefined
  }

  set(key: string, value: V, now: number): void {
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear()
    this.entries.set(key, { value, at: now })
  }

  delete(key: string): void {
    this.entries.delete(key)
  }
}
