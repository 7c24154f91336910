/**
 * The internal hop's credential: an HMAC of a time and the receiving node's id under the cluster
 * secret. A node signs once a second per peer and a node checks each distinct credential once:
 * per request the hop costs a map lookup and a constant-time compare, not two HMACs.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

/** Header that carries the credential of a hop between relay nodes. */
export const HOP_AUTH_HEADER = 'x-taskapp-relay-hop'
/** Path prefix of hops: `/_cluster/s/<route_token>/...` on the node that holds the agent. */
export const HOP_PREFIX = '/_cluster'
/** How far a hop's clock may be from ours (both ways). */
const MAX_SKEW_MS = 60_000
/** A signing node renews its credential for a peer this often. */
const RENEW_MS = 1_000
/** Checked credentials kept (one per peer and second): beyond this the memo starts afresh. */
const MEMO_MAX = 256

const mac = (secret: string, ts: string, nodeId: string): Buffer =>
  createHmac('sha256', secret).update(`hop\n${ts}\n${nodeId}`).digest()

/**
 * The credential for hops to node `nodeId` at `now`: `<epoch ms>.<base64url HMAC-SHA256>`.
 * @example
 * ```ts
 * headers[HOP_AUTH_HEADER] = signHop(secret, 'relay-a')
 * ```
 */
export function signHop(secret: string, nodeId: string, now = Date.now()): string {
  const ts = String(now)
  return `${ts}.${mac(secret, ts, nodeId).toString('base64url')}`
}

/** The time part of a credential when well formed and within {@link MAX_SKEW_MS} of `now`. */
function timeOf(credential: string | string[] | undefined, now: number): string | undefined {
  if (typeof credential !== 'string') return undefined
  const dot = credential.indexOf('.')
  const ts = credential.slice(0, dot)
  if (dot <= 0 || !/^\d{1,16}$/.test(ts) || Math.abs(now - Number(ts)) > MAX_SKEW_MS) return undefined
  return ts
}

const matches = (given: string, expected: Buffer): boolean => {
  const bytes = Buffer.from(given, 'base64url')
  return bytes.length === expected.length && timingSafeEqual(bytes, expected)
}

/**
 * Whether `credential` was signed for node `nodeId` under `secret`, within a minute of `now`
 * (constant-time compare).
 * @example
 * ```ts
 * if (!verifyHop(secret, 'relay-a', req.headers[HOP_AUTH_HEADER])) return notFound()
 * ```
 */
export function verifyHop(
  secret: string,
  nodeId: string,
  credential: string | string[] | undefined,
  now = Date.now(),
): boolean {
  const ts = timeOf(credential, now)
  return ts !== undefined && matches((credential as string).slice(ts.length + 1), mac(secret, ts, nodeId))
}

/**
 * One node's hop credentials: those it sends (one per peer, renewed every second) and those it
 * checks (the expected MAC of each time seen is remembered, so a peer's credential costs one HMAC
 * a second, not one per request; the compare stays constant-time and the minute's window holds).
 * @example
 * ```ts
 * const creds = new HopCredentials(secret, 'relay-b')
 * headers.push(HOP_AUTH_HEADER, creds.sign('relay-a'))
 * ```
 */
export class HopCredentials {
  private readonly sent = new Map<string, { at: number; value: string }>()
  private readonly expected = new Map<string, Buffer>()

  constructor(
    private readonly secret: string,
    private readonly nodeId: string,
  ) {}

  /** The credential for a hop to `peerId` now. */
  sign(peerId: string, now = Date.now()): string {
    const last = this.sent.get(peerId)
    if (last && now - last.at < RENEW_MS && now >= last.at) return last.value
    const value = signHop(this.secret, peerId, now)
    this.sent.set(peerId, { at: now, value })
    return value
  }

  /** Whether `credential` is a valid hop credential for this node now. */
  verify(credential: string | string[] | undefined, now = Date.now()): boolean {
    const ts = timeOf(credential, now)
    if (ts === undefined) return false
    let expected = this.expected.get(ts)
    if (!expected) {
      if (this.expected.size >= MEMO_MAX) this.expected.clear()
      expected = mac(this.secret, ts, this.nodeId)
      this.expected.set(ts, expected)
    }
    return matches((credential as string).slice(ts.length + 1), expected)
  }
}
