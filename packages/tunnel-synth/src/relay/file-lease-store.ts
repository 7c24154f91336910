import { randomBytes } from 'node:crypto'
import {
  accessSync,
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
import { countAlive } from './lease-store'
import type { LeaseStore, RelayLease } from './lease-store'
import type { JournalState } from './lease-journal'
import { createLeaseJournal } from './lease-journal'
import {
  LEGACY_VERSION,
  fileError,
  journalPathOf,
  parseSnapshot,
  replayJournal,
  snapshotText,
  toStored,
  writeError,
} from './lease-file-format'

/** Options of {@link createFileLeaseStore}. */
export interface FileLeaseStoreOptions {
  /**
   * Compact the journal (write a new snapshot, then cut the journal to what came after it) once
   * it holds more than this many changes and more than twice the number of live leases. Smaller
   * keeps the journal short; larger writes snapshots less often. Positive integer.
   * @default 1000
   */
  compactAfter?: number
}

const DEFAULT_COMPACT_AFTER = 1000

/** The file at `path`, or `undefined` when there is none. Throws `RelayLeaseFile`. */
function readIfExists(path: string): Buffer | undefined {
  try {
    return readFileSync(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    throw fileError(
      path,
      `cannot be read (${code ?? String(err)}). Pass the path of a file the relay may read and write.`,
      err,
    )
  }
}

/**
 * Removes the temporary files a crash during a snapshot or journal rewrite left beside `file`
 * (`.<name>.<pid>.<hex>.tmp`, `.<name>.journal.<pid>.<hex>.tmp`). Best effort.
 */
function removeStaleTemps(file: string): void {
  const name = basename(file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const temp = new RegExp(`^\\.${name}(\\.journal)?\\.\\d+\\.[0-9a-f]{8}\\.tmp$`)
  try {
    for (const entry of readdirSync(dirname(file))) {
      if (temp.test(entry)) unlinkSync(join(dirname(file), entry))
    }
  } catch {
    // a leftover temporary file wastes space, nothing else
  }
}

/** Writes `text` over `file` atomically and durably, synchronously (used once, to migrate). */
function replaceFileSync(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    const fd = openSync(tmp, 'wx', 0o600)
    try {
      fchmodSync(fd, 0o600)
      writeSync(fd, text)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, file)
    const dir = openSync(dirname(file), 'r')
    try {
      fsyncSync(dir)
    } finally {
      closeSync(dir)
    }
  } catch (err) {
    try {
      unlinkSync(tmp)
    } catch {
      // not created, or already renamed
    }
    throw writeError(file, err)
  }
}

/**
 * Reads the snapshot at `file` and replays `<file>.journal` over it; both missing is an empty
 * store. A version-1 file is rewritten as a version-2 snapshot. Throws `RelayLeaseFile`.
 */
function load(file: string, now: number): { leases: RelayLease[]; state: JournalState } {
  const journalPath = journalPathOf(file)
  const snapshotBytes = readIfExists(file)
  const journal = readIfExists(journalPath)
  removeStaleTemps(file)
  if (!snapshotBytes && !journal) {
    try {
      accessSync(dirname(file), constants.W_OK | constants.X_OK)
    } catch (dirErr) {
      throw fileError(
        file,
        `cannot be created: its directory ${dirname(file)} does not exist or is not writable. Create it, or pass another path.`,
        dirErr,
      )
    }
    return { leases: [], state: { seq: 0, bytes: 0, ops: 0, dirty: false } }
  }
  const corrupt = (path: string) => (why: string, cause?: unknown) =>
    fileError(
      path,
      `is not a valid lease file (${why}). Move it away or delete it, with ${file === path ? journalPath : file}, to start with no leases (their tunnels must then be reopened), or pass another path.`,
      cause,
    )
  const snapshot = snapshotBytes
    ? parseSnapshot(snapshotBytes.toString('utf8'), corrupt(file))
    : { version: 2, seq: 0, leases: [] }
  const byId = new Map(snapshot.leases.map((l) => [l.leaseId, l]))
  const replayed = journal
    ? replayJournal(
        journal,
        snapshot.seq,
        (op) => ('put' in op ? byId.set(op.put.leaseId, op.put) : byId.delete(op.del)),
        corrupt(journalPath),
      )
    : undefined
  const leases = [...byId.values()].filter((l) => l.expiresAt > now)
  const lastSeq = Math.max(snapshot.seq, replayed?.lastSeq ?? 0)
  // No line after the snapshot (or a migration rewrites them all into it): cut the journal.
  if (!replayed || lastSeq === snapshot.seq || snapshot.version === LEGACY_VERSION) {
    if (snapshot.version === LEGACY_VERSION)
      replaceFileSync(file, snapshotText(lastSeq, leases.map(toStored)))
    return { leases, state: { seq: lastSeq, bytes: 0, ops: 0, dirty: (journal?.length ?? 0) > 0 } }
  }
  return { leases, state: { seq: lastSeq, bytes: replayed.bytes, ops: replayed.ops, dirty: replayed.torn } }
}

/**
 * A {@link LeaseStore} that keeps leases in memory and persists them to disk, so a relay
 * restarted with the same path (after a crash, a deploy) keeps its leases and agents reconnect to
 * their tunnels. Every change is appended as one JSON line to the journal `<path>.journal` and
 * fsync'd; changes made while a line is being written share the next one (group commit), so a
 * change costs the same with 10 or 10 000 leases. When the journal outgrows the live leases, a
 * snapshot is written to `path` (temporary file, fsync, rename) off the request path and the
 * journal is cut. Both files are mode 0600. `put`/`delete`/`deleteExpired` resolve once the change
 * is on disk. It holds what {@link RelayLease} holds: hashes of agent and worker tokens and of the
 * owner key, and the route token (public, it is in the URL). One relay per file.
 *
 * Read once here: snapshot, then the journal replayed over it; a torn last line (a crash during
 * an append) is left out; expired leases are skipped; temporary files a crash left are removed; a
 * file of the single-file version 1 format is rewritten as a version-2 snapshot.
 *
 * @throws {SynthTunnelError} `TASKAPP_ERR_SYNTH_RELAY_LEASE_FILE` when a file cannot be read or is
 *   corrupt, or the directory is not writable; `put`/`delete`/`deleteExpired` reject with it when a
 *   write fails (a failed `put` is undone). `TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS` for a bad
 *   `path` or option.
 * @example
 * ```ts
 * const relay = await createRelayServer({ apiKeys: ['k'], leaseStore: createFileLeaseStore('/var/lib/relay/leases.json') })
 * ```
 */
export function createFileLeaseStore(path: string, options: FileLeaseStoreOptions = {}): LeaseStore {
  if (typeof path !== 'string' || path.trim() === '') {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.RelayInvalidOptions,
      'createFileLeaseStore: path must be a non-empty file path.',
    )
  }
  const compactAfter = options.compactAfter ?? DEFAULT_COMPACT_AFTER
  if (!Number.isSafeInteger(compactAfter) || compactAfter < 1) {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.RelayInvalidOptions,
      `createFileLeaseStore: compactAfter must be a positive integer (got ${String(options.compactAfter)}).`,
    )
  }
  const file = resolve(path)
  const byId = new Map<string, RelayLease>()
  const byRoute = new Map<string, RelayLease>()
  const byAgent = new Map<string, RelayLease>()
  const add = (lease: RelayLease) => {
    const old = byId.get(lease.leaseId)
    if (old) remove(old)
    byId.set(lease.leaseId, lease)
    byRoute.set(lease.routeToken, lease)
    byAgent.set(lease.agentTokenHash, lease)
  }
  const remove = (lease: RelayLease) => {
    byId.delete(lease.leaseId)
    byRoute.delete(lease.routeToken)
    byAgent.delete(lease.agentTokenHash)
  }
  const loaded = load(file, Date.now())
  for (const lease of loaded.leases) add(lease)
  const journal = createLeaseJournal({
    file,
    state: loaded.state,
    compactAfter,
    live: () => [...byId.values()].map(toStored),
    liveCount: () => byId.size,
  })

  return {
    async put(lease) {
      const previous = byId.get(lease.leaseId)
      add(lease)
      try {
        await journal.append([{ put: toStored(lease) }])
      } catch (err) {
        // Undo unless a later put replaced it meanwhile; the journal does not hold it.
        if (byId.get(lease.leaseId) === lease) {
          remove(lease)
          if (previous) add(previous)
        }
        throw err
      }
    },
    get: (id) => byId.get(id),
    findByRouteToken: (rt) => byRoute.get(rt),
    findByAgentTokenHash: (h) => byAgent.get(h),
    async delete(id) {
      const lease = byId.get(id)
      if (!lease) return false
      remove(lease)
      await journal.append([{ del: id }])
      return true
    },
    async deleteExpired(now) {
      const gone = [...byId.values()].filter((l) => l.expiresAt <= now)
      if (gone.length === 0) return gone
      for (const l of gone) remove(l)
      await journal.append(gone.map((l) => ({ del: l.leaseId })))
      return gone
    },
    size: () => byId.size,
    count: (now, owner) => countAlive(byId.values(), now, owner),
    list: (now) => [...byId.values()].filter((l) => l.expiresAt > now),
  }
}
