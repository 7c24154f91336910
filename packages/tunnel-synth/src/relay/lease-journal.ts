/**
 * The writing side of {@link createFileLeaseStore}: an append-only journal with group commit, and
 * compaction into a snapshot off the request path. Formats are in `lease-file-format.ts`.
 */
import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { open, rename, unlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { JournalOp, StoredLease } from './lease-file-format'
import { journalLine, journalPathOf, snapshotText, writeError } from './lease-file-format'

/** Where the journal stands when the store is loaded. */
export interface JournalState {
  /** Seq of the last line written (the snapshot's seq when the journal has none after it). */
  seq: number
  /** Byte length of the whole lines in the journal file. */
  bytes: number
  /** Changes in the journal file. */
  ops: number
  /** Whether bytes after `bytes` must be cut before the next append (a torn or stale tail). */
  dirty: boolean
}

export interface LeaseJournalOptions {
  /** Snapshot path; the journal is `<file>.journal`. */
  file: string
  state: JournalState
  /** Compact once the journal holds more than this many changes and twice the live leases. */
  compactAfter: number
  /** The live leases now, as stored; called synchronously when a snapshot is taken. */
  live(): StoredLease[]
  liveCount(): number
}

export interface LeaseJournal {
  /** Appends `ops` as part of the next journal line; resolves once that line is fsync'd. */
  append(ops: JournalOp[]): Promise<void>
}

interface Pending {
  ops: JournalOp[]
  resolve(): void
  reject(err: unknown): void
}

/** Writes `buf` at `position`, resuming after short writes. */
async function writeAll(handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done)
    done += bytesWritten
  }
}

/** Makes renames and new files in `dir` durable. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Writes `text` to a new temporary file beside `file` (mode exactly 0600, fsync'd) and renames it
 * over `file`, once `ready` (if given) resolves true. A crash leaves the old or the new file.
 */
export async function replaceFile(file: string, text: string, ready?: Promise<boolean>): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    const handle = await open(tmp, 'wx', 0o600)
    try {
      await handle.chmod(0o600) // exactly 0600, whatever the umask
      await handle.writeFile(text, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
    if (ready && !(await ready)) throw new Error('the change the snapshot ends with was not written')
    await rename(tmp, file)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw writeError(file, err)
  }
  await syncDir(dirname(file)).catch(() => {}) // the rename is done; this only hardens it
}

/**
 * Group commit: changes made while a line is being written share the next line and its fsync, so
 * a change costs one small append whatever the number of leases. Once the journal holds more than
 * `max(compactAfter, 2 × live leases)` changes, a snapshot is taken and written beside the file
 * while appends go on; then the journal is cut to the lines after it (a short pause of appends).
 */
export function createLeaseJournal(o: LeaseJournalOptions): LeaseJournal {
  const journalPath = journalPathOf(o.file)
  let { seq, bytes, ops: journalOps, dirty } = o.state
  let opened = false // the journal's mode and directory entry are checked once
  let queue: Pending[] = []
  let flushScheduled = false
  let chain: Promise<void> = Promise.resolve()
  /** A compaction in flight: its seq, and the lines written after it (they stay in the journal). */
  let compacting: { seq: number; tail: string[]; tailOps: number } | undefined
  let compactDue = false
  let retryAt = 0 // after a failed compaction, journalOps to reach before the next try

  const serial = (fn: () => Promise<void>): Promise<void> => {
    const next = chain.then(fn)
    chain = next.catch(() => {})
    return next
  }

  async function writeLine(line: string): Promise<void> {
    const buf = Buffer.from(line, 'utf8')
    let handle: FileHandle
    try {
      handle = await open(journalPath, constants.O_WRONLY | constants.O_CREAT, 0o600)
    } catch (err) {
      throw writeError(journalPath, err)
    }
    try {
      if (!opened) await handle.chmod(0o600)
      if (dirty) await handle.truncate(bytes) // cut a torn or failed write: lines stay whole
      dirty = true
      await writeAll(handle, buf, bytes)
      await handle.sync()
      dirty = false
    } catch (err) {
      throw writeError(journalPath, err)
    } finally {
      await handle.close().catch(() => {})
    }
    bytes += buf.length
    if (!opened) await syncDir(dirname(journalPath)).catch(() => {})
    opened = true
  }

  async function flush(): Promise<void> {
    flushScheduled = false
    const batch = queue
    queue = []
    const lineSeq = seq + 1
    const ops = batch.flatMap((p) => p.ops)
    const line = journalLine(lineSeq, ops)
    // Memory now holds exactly the changes up to this line: the moment to take a due snapshot.
    const snapshot = compactDue ? capture(lineSeq) : undefined
    compactDue = false
    try {
      await writeLine(line)
    } catch (err) {
      snapshot?.(false)
      for (const p of batch) p.reject(err)
      return
    }
    seq = lineSeq
    journalOps += ops.length
    if (compacting && lineSeq > compacting.seq) {
      compacting.tail.push(line)
      compacting.tailOps += ops.length
    }
    snapshot?.(true)
    for (const p of batch) p.resolve()
    maybeCompact()
  }

  function maybeCompact(): void {
    if (compacting || compactDue || journalOps < retryAt) return
    if (journalOps <= Math.max(o.compactAfter, 2 * o.liveCount())) return
    if (queue.length > 0)
      compactDue = true // their line is next: snapshot with it
    else capture(seq)(true)
  }

  /** Snapshots memory as of line `at` and starts writing it; call the result once line `at` is (not) written. */
  function capture(at: number): (written: boolean) => void {
    const text = snapshotText(at, o.live())
    compacting = { seq: at, tail: [], tailOps: 0 }
    let settle!: (written: boolean) => void
    const written = new Promise<boolean>((resolve) => (settle = resolve))
    replaceFile(o.file, text, written)
      .then(() => serial(cutJournal))
      .catch(() => {
        // The journal still holds every change; try again once it has grown some more.
        compacting = undefined
        retryAt = journalOps + o.compactAfter
      })
    return settle
  }

  /** Replaces the journal by the lines written after the snapshot. Runs between appends. */
  async function cutJournal(): Promise<void> {
    const c = compacting!
    const tail = c.tail.join('')
    await replaceFile(journalPath, tail)
    bytes = Buffer.byteLength(tail)
    journalOps = c.tailOps
    dirty = false
    opened = true
    compacting = undefined
    retryAt = 0
  }

  return {
    append(ops) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ ops, resolve, reject })
        if (flushScheduled) return
        flushScheduled = true
        void serial(flush)
      })
    },
  }
}
