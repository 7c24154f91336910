/** Presence records in Redis: "lease → node that holds its agent", kept alive by a heartbeat. */
import type { Redis } from 'ioredis'
import { defineScript, runScript } from './scripts'

/** A presence record: the node, the URL it is reached on, and the attach it belongs to. */
export interface Presence {
  /** Node id. */
  n: string
  /** Advertised URL of the node. */
  u: string
  /** Attach nonce: a record is released only by the attach that wrote it. */
  s: string
}

// KEYS: presence. ARGV: value. Delete only when the record is still this attach's.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`
// KEYS: presence, lease. ARGV: value, ttl. -1: lease gone; 1: renewed; 2: reclaimed (record was lost); 0: another node's
const BEAT = `
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0`

/** What a heartbeat found for one lease. */
export type BeatResult = 'renewed' | 'reclaimed' | 'taken' | 'lease-gone'

/** Presence operations under one key prefix. */
export class PresenceRecords {
  constructor(
    private readonly client: Redis,
    private readonly prefix: string,
    private readonly ttlMs: number,
  ) {}

  private key(leaseId: string): string {
    return `${this.prefix}presence:${leaseId}`
  }

  /** Write this node's record (taking it over from any other); resolves with the previous record's node. */
  async claim(leaseId: string, value: string): Promise<string | undefined> {
    const previous = await this.client.set(this.key(leaseId), value, 'PX', this.ttlMs, 'GET')
    return previous === null ? undefined : parse(previous)?.n
  }

  /** Delete the record when it is still `value` (compare-and-delete). */
  async release(leaseId: string, value: string): Promise<void> {
    await runScript(this.client, 'Release', RELEASE, [this.key(leaseId)], [value])
  }

  /** The record of `leaseId`, if any. */
  async lookup(leaseId: string): Promise<{ presence: Presence; raw: string } | undefined> {
    const raw = await this.client.get(this.key(leaseId))
    const presence = raw === null ? undefined : parse(raw)
    return presence && raw !== null ? { presence, raw } : undefined
  }

  /** Renew every held record and this node's registration in one pipeline. */
  async beat(
    held: readonly { leaseId: string; value: string }[],
    nodeKey: string,
    nodeUrl: string,
  ): Promise<BeatResult[]> {
    const command = defineScript(this.client, 'Beat', BEAT, 2)
    const pipe = this.client.pipeline()
    pipe.set(nodeKey, nodeUrl, 'PX', this.ttlMs)
    const queue = pipe as unknown as Record<string, (...args: (string | number)[]) => unknown>
    for (const h of held) {
      queue[command]!(this.key(h.leaseId), `${this.prefix}lease:${h.leaseId}`, h.value, this.ttlMs)
    }
    const replies = (await pipe.exec()) ?? []
    const out: BeatResult[] = []
    for (const [err, reply] of replies.slice(1)) {
      if (err) throw err
      out.push(reply === 1 ? 'renewed' : reply === 2 ? 'reclaimed' : reply === -1 ? 'lease-gone' : 'taken')
    }
    return out
  }
}

function parse(raw: string): Presence | undefined {
  try {
    const v = JSON.parse(raw) as Partial<Presence>
    return typeof v.n === 'string' && typeof v.u === 'string' && typeof v.s === 'string'
      ? (v as Presence)
      : undefined
  } catch {
    return undefined
  }
}
