/**
 * On-disk format of {@link createFileLeaseStore}: a snapshot file and a journal beside it. Pure
 * functions only (text in, leases out); the reading and writing are in `file-lease-store.ts` and
 * `lease-journal.ts`.
 *
 * - Snapshot `<path>`: `{"version":2,"seq":S,"leases":[...]}`, the leases after journal line S.
 *   Version 1 (`{"version":1,"leases":[...]}`, no journal) is the format before the journal; it
 *   reads as a snapshot with `seq` 0.
 * - Journal `<path>.journal`: one JSON line per write, `{"seq":N,"ops":[{"put":lease},{"del":id}]}`,
 *   N counting up by one. Lines up to S are already in the snapshot and are skipped.
 */
import { dirname } from 'node:path'
import type { RelayLease } from './lease-store'
import { SynthTunnelError, SynthTunnelErrorCode } from '../errors'

/** Version of the snapshot written by {@link createFileLeaseStore}. */
export const SNAPSHOT_VERSION = 2
/** The single-file format before the journal: still read, rewritten as version 2 on load. */
export const LEGACY_VERSION = 1

/** A {@link RelayLease} as JSON: `localTarget` is `null` when unknown (JSON has no `undefined`). */
export type StoredLease = Omit<RelayLease, 'localTarget'> & {
  localTarget: { host: string; port: number } | null
}

/** One change in a journal line. */
export type JournalOp = { put: StoredLease } | { del: string }
/** One change read back from a journal line. */
export type ReplayedOp = { put: RelayLease } | { del: string }

export const journalPathOf = (file: string) => `${file}.journal`

export function fileError(path: string, problem: string, cause?: unknown): SynthTunnelError {
  return new SynthTunnelError(
    SynthTunnelErrorCode.RelayLeaseFile,
    `Lease file ${path} ${problem}`,
    cause === undefined ? {} : { cause },
  )
}

/** The error for a failed write of `path`. */
export function writeError(path: string, err: unknown): SynthTunnelError {
  return fileError(
    path,
    `could not be written (${(err as NodeJS.ErrnoException).code ?? String(err)}). Check disk space and that the relay may write to ${dirname(path)}.`,
    err,
  )
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0

/** The {@link RelayLease} fields, and nothing else a caller's object may carry. */
export function toStored(l: RelayLease): StoredLease {
  return {
    leaseId: l.leaseId,
    routeToken: l.routeToken,
    agentTokenHash: l.agentTokenHash,
    workerTokenHash: l.workerTokenHash,
    ownerKeyHash: l.ownerKeyHash,
    clientInstanceId: l.clientInstanceId,
    localTarget: l.localTarget ? { host: l.localTarget.host, port: l.localTarget.port } : null,
    createdAt: l.createdAt,
    expiresAt: l.expiresAt,
  }
}

const STRING_FIELDS = [
  'leaseId',
  'routeToken',
  'agentTokenHash',
  'workerTokenHash',
  'ownerKeyHash',
  'clientInstanceId',
] as const

/** One stored lease back to a {@link RelayLease}, or `undefined` when a field is missing or mistyped. */
export function toLease(raw: unknown): RelayLease | undefined {
  if (!isObject(raw)) return undefined
  if (!STRING_FIELDS.every((k) => typeof raw[k] === 'string')) return undefined
  if (!Number.isFinite(raw.createdAt) || !Number.isFinite(raw.expiresAt)) return undefined
  const t = raw.localTarget
  let localTarget: RelayLease['localTarget']
  if (isObject(t) && typeof t.host === 'string' && typeof t.port === 'number') {
    localTarget = { host: t.host, port: t.port }
  } else if (t !== null && t !== undefined) {
    return undefined
  }
  return {
    leaseId: raw.leaseId as string,
    routeToken: raw.routeToken as string,
    agentTokenHash: raw.agentTokenHash as string,
    workerTokenHash: raw.workerTokenHash as string,
    ownerKeyHash: raw.ownerKeyHash as string,
    clientInstanceId: raw.clientInstanceId as string,
    localTarget,
    createdAt: raw.createdAt as number,
    expiresAt: raw.expiresAt as number,
  }
}

/** The text of a version-2 snapshot holding `leases` as of journal line `seq`. */
export function snapshotText(seq: number, leases: StoredLease[]): string {
  return `${JSON.stringify({ version: SNAPSHOT_VERSION, seq, leases })}\n`
}

/** The text of journal line `seq`. */
export function journalLine(seq: number, ops: JournalOp[]): string {
  return `${JSON.stringify({ seq, ops })}\n`
}

export interface ParsedSnapshot {
  version: typeof SNAPSHOT_VERSION | typeof LEGACY_VERSION
  /** Journal line the snapshot includes (0 for version 1). */
  seq: number
  leases: RelayLease[]
}

/** Parses a snapshot; `corrupt(why)` builds the error thrown for a bad one. */
export function parseSnapshot(
  text: string,
  corrupt: (why: string, cause?: unknown) => Error,
): ParsedSnapshot {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw corrupt('not JSON', err)
  }
  if (!isObject(parsed) || !Array.isArray(parsed.leases)) throw corrupt('no "leases" array')
  const version = parsed.version
  if (version !== SNAPSHOT_VERSION && version !== LEGACY_VERSION) {
    throw corrupt(
      `format version ${JSON.stringify(version)}, this relay reads versions ${LEGACY_VERSION} and ${SNAPSHOT_VERSION}`,
    )
  }
  const seq = version === LEGACY_VERSION ? 0 : parsed.seq
  if (!isSeq(seq)) throw corrupt('no "seq" journal position')
  const leases: RelayLease[] = []
  for (const [i, raw] of parsed.leases.entries()) {
    const lease = toLease(raw)
    if (!lease) throw corrupt(`lease #${i} lacks a field or has a wrong type`)
    leases.push(lease)
  }
  return { version, seq, leases }
}

/** What a journal holds, as far as it is whole. */
export interface ParsedJournal {
  /** Byte length of the whole lines (what follows is a torn last line, or nothing). */
  bytes: number
  /** Number of changes in those lines. */
  ops: number
  /** Seq of the last whole line; `undefined` when there is none. */
  lastSeq: number | undefined
  /** Whether a torn last line (a write cut by a crash) follows `bytes`. */
  torn: boolean
}

/** One journal line to `{ seq, ops }`, or a reason it is not one. */
function parseLine(text: string): { seq: number; ops: ReplayedOp[] } | string {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return 'not JSON'
  }
  if (!isObject(raw) || !isSeq(raw.seq) || !Array.isArray(raw.ops)) return 'not a {"seq","ops"} line'
  const ops: ReplayedOp[] = []
  for (const op of raw.ops as unknown[]) {
    if (isObject(op) && typeof op.del === 'string') {
      ops.push({ del: op.del })
      continue
    }
    const lease = isObject(op) ? toLease(op.put) : undefined
    if (!lease) return 'a change that is neither a whole lease "put" nor a "del"'
    ops.push({ put: lease })
  }
  return { seq: raw.seq, ops }
}

/**
 * Replays `journal` over a snapshot at `snapshotSeq`: calls `apply` for each change of the lines
 * after it. A torn last line (no newline, or not JSON) is left out; any other bad line, or a seq
 * that does not follow the snapshot or the line before, throws `corrupt(why)`.
 */
export function replayJournal(
  journal: Buffer,
  snapshotSeq: number,
  apply: (op: ReplayedOp) => void,
  corrupt: (why: string) => Error,
): ParsedJournal {
  const result: ParsedJournal = { bytes: 0, ops: 0, lastSeq: undefined, torn: false }
  let start = 0
  for (let n = 1; start < journal.length; n++) {
    const nl = journal.indexOf(0x0a, start)
    const last = nl === -1 || nl === journal.length - 1
    const line = nl === -1 ? 'unterminated' : parseLine(journal.toString('utf8', start, nl))
    if (typeof line === 'string') {
      if (last && (nl === -1 || line === 'not JSON')) return { ...result, torn: true }
      throw corrupt(`journal line ${n} is ${line}`)
    }
    const expected = result.lastSeq === undefined ? undefined : result.lastSeq + 1
    if (expected === undefined ? line.seq > snapshotSeq + 1 : line.seq !== expected) {
      throw corrupt(
        `journal line ${n} has seq ${line.seq} where ${expected ?? `at most ${snapshotSeq + 1}`} belongs: ` +
          'the journal does not belong to this snapshot',
      )
    }
    if (line.seq > snapshotSeq) line.ops.forEach(apply)
    result.ops += line.ops.length
    result.lastSeq = line.seq
    result.bytes = nl + 1
    start = nl + 1
  }
  return result
}
