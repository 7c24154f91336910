/** A lease as the relay keeps it. Secrets are stored as SHA-256 hashes only. */
export interface RelayLease {
  leaseId: string
  /** Public routing token (`rt_...`); it is part of the public URL, not a secret. */
  routeToken: string
  agentTokenHash: string
  workerTokenHash: string
  /** Hash of the API key that created the lease; only that key may delete it. */
  ownerKeyHash: string
  clientInstanceId: string
  localTarget: { host: string; port: number } | undefined
  createdAt: number
  /** Epoch milliseconds. */
  expiresAt: number
}

/**
 * Where the relay keeps leases. Methods may return promises, so a shared store (a database) fits,
 * provided calls take effect in the order they are made (a `count` sees every earlier `put`).
 * The default is in memory; pass the same store to a restarted relay to keep its leases.
 */
export interface LeaseStore {
  put(lease: RelayLease): void | Promise<void>
  get(leaseId: string): RelayLease | undefined | Promise<RelayLease | undefined>
  findByRouteToken(routeToken: string): RelayLease | undefined | Promise<RelayLease | undefined>
  findByAgentTokenHash(hash: string): RelayLease | undefined | Promise<RelayLease | undefined>
  delete(leaseId: string): boolean | Promise<boolean>
  /** Remove and return leases whose `expiresAt` is at or before `now`. */
  deleteExpired(now: number): RelayLease[] | Promise<RelayLease[]>
  size(): number | Promise<number>
  /**
   * Leases alive at `now` (`expiresAt` after it), only those created by the API key whose hash is
   * `ownerKeyHash` when given. The relay's lease caps (`maxLeases`, `maxLeasesPerKey`) count with it.
   */
  count(now: number, ownerKeyHash?: string): number | Promise<number>
  /** Leases alive at `now`, for the status page (optional: without it, the page lists tunnels with an agent or recent traffic). */
  list?(now: number): RelayLease[] | Promise<RelayLease[]>
}

/** {@link LeaseStore.count} over any collection of leases. */
export function countAlive(leases: Iterable<RelayLease>, now: number, ownerKeyHash?: string): number {
  let n = 0
  for (const l of leases) {
    if (l.expiresAt > now && (ownerKeyHash === undefined || l.ownerKeyHash === ownerKeyHash)) n += 1
  }
  return n
}

/**
 * An in-memory {@link LeaseStore}.
 *
 * @example
 * ```ts
 * const leaseStore = createMemoryLeaseStore()
 * const relay = await createRelayServer({ apiKeys: ['k'], leaseStore })
 * ```
 */
export function createMemoryLeaseStore(): LeaseStore {
  const byId = new Map<string, RelayLease>()
  const byRoute = new Map<string, RelayLease>()
  const byAgent = new Map<string, RelayLease>()
  const remove = (lease: RelayLease) => {
    byId.delete(lease.leaseId)
    byRoute.delete(lease.routeToken)
    byAgent.delete(lease.agentTokenHash)
  }
  return {
    put(lease) {
      byId.set(lease.leaseId, lease)
      byRoute.set(lease.routeToken, lease)
      byAgent.set(lease.agentTokenHash, lease)
    },
    get: (id) => byId.get(id),
    findByRouteToken: (rt) => byRoute.get(rt),
    findByAgentTokenHash: (h) => byAgent.get(h),
    delete(id) {
      const lease = byId.get(id)
      if (!lease) return false
      remove(lease)
      return true
    },
    deleteExpired(now) {
      const gone = [...byId.values()].filter((l) => l.expiresAt <= now)
      for (const l of gone) remove(l)
      return gone
    },
    size: () => byId.size,
    count: (now, owner) => countAlive(byId.values(), now, owner),
    list: (now) => [...byId.values()].filter((l) => l.expiresAt > now),
  }
}
