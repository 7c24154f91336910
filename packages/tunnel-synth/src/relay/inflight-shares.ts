/** Admission accounting: requests in flight per relay, per lease and per owner API key. */
import type { RelayLease } from './lease-store'
import type { RelaySettings } from './relay-options'

/** Which limit refused a request, with the 429 problem code it is answered with. */
export const ShareLimit = {
  lease: 'TUNNEL_LEASE_IN_FLIGHT_LIMIT',
  key: 'TUNNEL_KEY_IN_FLIGHT_LIMIT',
} as const

/** Requests the relay refused or cut, by reason, since it started. */
export interface RelayRejections {
  /** 429 `TUNNEL_CAPACITY_EXCEEDED`: the relay's `maxInflight`, its memory budget, or the agent's own cap. */
  capacity: number
  /** 429 `TUNNEL_LEASE_IN_FLIGHT_LIMIT`: the lease held `maxInflightPerLease` requests. */
  leaseInflight: number
  /** 429 `TUNNEL_KEY_IN_FLIGHT_LIMIT`: the leases of its API key held `maxInflightPerKey` requests. */
  keyInflight: number
  /** 408 `TUNNEL_REQUEST_BODY_TIMEOUT`: a request body stalled or came slower than the minimum rate. */
  slowBody: number
}

/** One relay's in-flight counters: the total, and one per lease and per owner key while non-zero. */
export class InflightShares {
  /** Requests in flight across all agents. */
  total = 0
  readonly rejected: RelayRejections = { capacity: 0, leaseInflight: 0, keyInflight: 0, slowBody: 0 }
  private readonly byLease = new Map<string, number>()
  /** By the SHA-256 of the API key that created the lease (never the key itself). */
  private readonly byKey = new Map<string, number>()

  constructor(private readonly settings: RelaySettings) {}

  /** The share `lease` is at (its own first, then its key's), or `undefined` when both have room. */
  fullShare(lease: RelayLease): keyof typeof ShareLimit | undefined {
    const { maxInflightPerLease, maxInflightPerKey } = this.settings
    if ((this.byLease.get(lease.leaseId) ?? 0) >= maxInflightPerLease) return 'lease'
    if ((this.byKey.get(lease.ownerKeyHash) ?? 0) >= maxInflightPerKey) return 'key'
    return undefined
  }

  /** Count one more request in flight through `lease`. */
  take(lease: RelayLease): void {
    this.total += 1
    bump(this.byLease, lease.leaseId, 1)
    bump(this.byKey, lease.ownerKeyHash, 1)
  }

  /** Count one request through `lease` as over (once per {@link take}). */
  release(lease: RelayLease): void {
    this.total -= 1
    bump(this.byLease, lease.leaseId, -1)
    bump(this.byKey, lease.ownerKeyHash, -1)
  }
}

/** Add `by` to `key`'s count, forgetting it at zero (no entry outlives its last request). */
function bump(counts: Map<string, number>, key: string, by: number): void {
  const next = (counts.get(key) ?? 0) + by
  if (next > 0) counts.set(key, next)
  else counts.delete(key)
}
