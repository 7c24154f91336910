import { randomBytes } from 'node:crypto'
import { accessSync, constants, readFileSync } from 'node:fs'
import { open, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
import { countAlive } from './lease-store'
import type { LeaseStore, RelayLease } from './lease-store'

/** Version of the lease file format written by {@link createFileLeaseStore}. */
const FILE_VERSION = 1

interface LeaseFile {
  version: typeof FILE_VERSION
  leases: StoredLease[]
}

/** A {@link RelayLease} as JSON: `localTarget` is `null` when unknown (JSON has no `undefined`). */
type StoredLease = Omit<RelayLease, 'localTarget'> & { localTarget: { host: string; port: number } | null }

function fileError(path: string, problem: string, cause?: unknown): SynthTunnelError {
  return new SynthTunnelError(
    SynthTunnelErrorCode.RelayLeaseFile,
    `Lease file ${path} ${problem}`,
    cause === undefined ? {} : { cause },
  )
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

/** The {@link RelayLease} fields, and nothing else a caller's object may carry. */
function toStored(l: RelayLease): StoredLease {
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

/** One stored lease back to a {@link RelayLease}, or `undefined` when a field is missing or mistyped. */
function toLease(raw: unknown): RelayLease | undefined {
  if (!isObject(raw)) return undefined
  const strings = [
    'leaseId',
    'routeToken',
    'agentTokenHash',
    'workerTokenHash',
    'ownerKeyHash',
    'clientInstanceId',
  ]
  if (!strings.every((k) => typeof raw[k] === 'string')) return undefined
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

/** The leases of `path` that have not expired; a missing file is empty. Throws `RelayLeaseFile`. */
function load(path: string, now: number): RelayLease[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw fileError(
        path,
        `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)}). Pass the path of a file the relay may read and write.`,
        err,
      )
    }
    try {
      accessSync(dirname(path), constants.W_OK | constants.X_OK)
    } catch (dirErr) {
      throw fileError(
        path,
        `cannot be created: its directory ${dirname(path)} does not exist or is not writable. Create it, or pass another path.`,
        dirErr,
      )
    }
    return []
  }
  const corrupt = (why: string, cause?: unknown) =>
    fileError(
      path,
      `is not a valid lease file (${why}). Move it away or delete it to start with no leases (their tunnels must then be reopened), or pass another path.`,
      cause,
    )
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw corrupt('not JSON', err)
  }
  if (!isObject(parsed) || !Array.isArray(parsed.leases)) throw corrupt('no "leases" array')
  if (parsed.version !== FILE_VERSION) {
    throw corrupt(
      `format version ${JSON.stringify(parsed.version)}, this relay reads version ${FILE_VERSION}`,
    )
  }
  const leases: RelayLease[] = []
  for (const [i, raw] of parsed.leases.entries()) {
    const lease = toLease(raw)
    if (!lease) throw corrupt(`lease #${i} lacks a field or has a wrong type`)
    if (lease.expiresAt > now) leases.push(lease)
  }
  return leases
}

/**
 * Writes `leases` to `file` atomically (temporary file in the same directory, mode 0600, then
 * rename); the snapshot is taken synchronously, before the first `await`. Throws `RelayLeaseFile`.
 */
async function writeLeaseFile(file: string, leases: Iterable<RelayLease>): Promise<void> {
  const snapshot: LeaseFile = {
    version: FILE_VERSION,
    leases: [...leases].map(toStored),
  }
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    const handle = await open(tmp, 'wx', 0o600)
    try {
      await handle.chmod(0o600) // exactly 0600, whatever the umask
      await handle.writeFile(`${JSON.stringify(snapshot)}\n`, 'utf8')
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(tmp, file)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw fileError(
      file,
      `could not be written (${(err as NodeJS.ErrnoException).code ?? String(err)}). Check disk space and that the relay may write to ${dirname(file)}.`,
      err,
    )
  }
}

/**
 * Serializes calls of `write`: they never interleave, and calls made while a write waits to start
 * share it (it runs later, so it includes their changes).
 */
function serializedWriter(write: () => Promise<void>): () => Promise<void> {
  let tail: Promise<void> = Promise.resolve()
  let queued: Promise<void> | undefined
  return () => {
    if (queued) return queued
    const next = tail.then(() => {
      queued = undefined // later changes need a later write: this one snapshots now
      return write()
    })
    queued = next
    tail = next.catch(() => {})
    return next
  }
}

/**
 * A {@link LeaseStore} that keeps leases in memory and persists them to a JSON file, so a relay
 * restarted with the same path (after a crash, a deploy) keeps its leases and agents reconnect to
 * their tunnels. The file is read once here (missing: no leases; expired leases are skipped) and
 * rewritten atomically (temporary file in the same directory, then rename; mode 0600) after every
 * change; writes are serialized, and `put`/`delete`/`deleteExpired` resolve once the file holds
 * the change. It holds what {@link RelayLease} holds: hashes of agent and worker tokens and of the
 * owner key, and the route token (public, it is in the URL). One relay per file.
 *
 * @throws {SynthTunnelError} `TASKAPP_ERR_SYNTH_RELAY_LEASE_FILE` when the file cannot be read or is
 *   corrupt, or its directory is not writable; `put`/`delete`/`deleteExpired` reject with it when a
 *   write fails (a failed `put` is undone).
 * @example
 * ```ts
 * const relay = await createRelayServer({ apiKeys: ['k'], leaseStore: createFileLeaseStore('/var/lib/relay/leases.json') })
 * ```
 */
export function createFileLeaseStore(path: string): LeaseStore {
  if (typeof path !== 'string' || path.trim() === '') {
    throw new SynthTunnelError(
      SynthTunnelErrorCode.RelayInvalidOptions,
      'createFileLeaseStore: path must be a non-empty file path.',
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
  for (const lease of load(file, Date.now())) add(lease)

  /** Writes never interleave; changes made while a write waits to start share it. */
  const persist = serializedWriter(() => writeLeaseFile(file, byId.values()))

  return {
    async put(lease) {
      const previous = byId.get(lease.leaseId)
      add(lease)
      try {
        await persist()
      } catch (err) {
        // Undo unless a later put replaced it meanwhile; the file keeps what it had.
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
      await persist()
      return true
    },
    async deleteExpired(now) {
      const gone = [...byId.values()].filter((l) => l.expiresAt <= now)
      if (gone.length === 0) return gone
      for (const l of gone) remove(l)
      await persist()
      return gone
    },
    size: () => byId.size,
    count: (now, owner) => countAlive(byId.values(), now, owner),
  }
}
