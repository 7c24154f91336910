import { readFile, readdir, readlink } from 'node:fs/promises'
import { PortManagerError, type PortOwner } from './errors'
import { assertCount, assertPort } from './validate'
import { pollUntil } from './poll'

const LISTEN_STATE = '0A'

/** Socket inodes of TCP sockets listening on `port` (IPv4 and IPv6), read from /proc/net. */
async function listeningInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>()
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0')
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = await readFile(table, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/)
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const local = cols[1]
      if (local === undefined || cols[3] !== LISTEN_STATE) continue
      if (local.slice(local.lastIndexOf(':') + 1) === hexPort && cols[9] !== undefined && cols[9] !== '0') {
        inodes.add(cols[9])
      }
    }
  }
  return inodes
}

async function commandOf(pid: number): Promise<string> {
  try {
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8')
    return raw.split('\0').filter(Boolean).join(' ')
  } catch {
    return ''
  }
}

/** The holder of a listening port and the inodes of its listening sockets on that port. */
interface LocatedOwner {
  readonly owner: PortOwner
  readonly inodes: ReadonlySet<string>
}

/** Finds the first process (in /proc order) whose descriptors reference one of `inodes`. */
async function locateOwner(inodes: Set<string>): Promise<LocatedOwner | undefined> {
  const wanted = new Map([...inodes].map((inode) => [`socket:[${inode}]`, inode]))
  let pids: string[]
  try {
    pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name))
  } catch {
    return undefined
  }
  for (const pid of pids) {
    let fds: string[]
    try {
      fds = await readdir(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    const held = new Set<string>()
    for (const fd of fds) {
      try {
        const inode = wanted.get(await readlink(`/proc/${pid}/fd/${fd}`))
        if (inode !== undefined) held.add(inode)
      } catch {
        // the fd closed while we looked: go on
      }
    }
    if (held.size > 0)
      return { owner: { pid: Number(pid), command: await commandOf(Number(pid)) }, inodes: held }
  }
  return undefined
}

/**
 * Finds the process listening on a TCP port.
 *
 * On Linux it reads `/proc/net/tcp{,6}` and `/proc/<pid>/fd` (no `lsof` needed). Elsewhere, or
 * when the owner belongs to another user whose file descriptors cannot be read, it returns
 * `undefined`.
 *
 * @example
 * const owner = await findPortOwner(8114) // { pid: 4242, command: 'node server.js' } | undefined
 */
export async function findPortOwner(port: number): Promise<PortOwner | undefined> {
  assertPort(port, { allowZero: false })
  if (process.platform !== 'linux') return undefined
  const inodes = await listeningInodes(port)
  if (inodes.size === 0) return undefined
  return (await locateOwner(inodes))?.owner
}

/** Options of {@link killPortOwner}. */
export interface KillPortOwnerOptions {
  /** Abort the wait. */
  signal?: AbortSignal
  /**
   * How long to wait after SIGTERM before SIGKILL, and again after SIGKILL.
   * @default 5000
   */
  timeoutMs?: number
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/** After SIGKILL, the port is waited for at least this long (see {@link killPortOwner}). */
const KILL_TEARDOWN_FLOOR_MS = 2000

/**
 * Stops the process listening on `port`: SIGTERM, then SIGKILL if the port is still held after
 * `timeoutMs` (then waits at least 2 s for the kernel to release it). Resolves with the owner it stopped, or `undefined` when nothing listened. It
 * refuses (`TASKAPP_ERR_KILL_REFUSED`) to kill the calling process itself.
 *
 * @example
 * const stopped = await killPortOwner(8114, { timeoutMs: 2000 })
 */
export async function killPortOwner(
  port: number,
  options: KillPortOwnerOptions = {},
): Promise<PortOwner | undefined> {
  assertPort(port, { allowZero: false })
  const timeoutMs = options.timeoutMs ?? 5000
  assertCount('timeoutMs', timeoutMs, 0)
  options.signal?.throwIfAborted()
  if (process.platform !== 'linux') return undefined
  const located = await locateOwner(await listeningInodes(port))
  if (located === undefined) return undefined
  const { owner } = located
  if (owner.pid === process.pid) {
    throw new PortManagerError(
      'TASKAPP_ERR_KILL_REFUSED',
      `Port ${port} is held by this very process (PID ${owner.pid}); close that server instead of killing it.`,
      { port, owner },
    )
  }
  // Released means: the process is gone (reaped), or none of its listening sockets on the port is
  // still listed in /proc/net/tcp. Not "no owner found": while a process exits, the kernel detaches
  // its descriptor table (/proc/<pid>/fd reads empty) before it closes the sockets, so for a moment
  // the port is still bound with no visible owner, and a bind then fails with EADDRINUSE.
  const released = async () => {
    if (processGone(owner.pid)) return true
    const listening = await listeningInodes(port)
    return ![...located.inodes].some((inode) => listening.has(inode))
  }
  for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
    try {
      process.kill(owner.pid, sig)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return owner
      throw new PortManagerError(
        'TASKAPP_ERR_KILL_FAILED',
        `Could not send ${sig} to PID ${owner.pid} (${owner.command}) holding port ${port}: ` +
          `${(err as Error).message}. Stop it yourself or choose another port.`,
        { port, owner, cause: err },
      )
    }
    // SIGTERM gets `timeoutMs`. SIGKILL cannot be ignored: what is left is the kernel tearing the
    // process down, which on a loaded machine can take longer than a short `timeoutMs`, so that
    // wait has a floor (giving up then would leave a dying process blamed for the port).
    const waitMs = sig === 'SIGKILL' ? Math.max(timeoutMs, KILL_TEARDOWN_FLOOR_MS) : timeoutMs
    if (await pollUntil(released, { timeoutMs: waitMs, signal: options.signal })) return owner
  }
  throw new PortManagerError(
    'TASKAPP_ERR_KILL_FAILED',
    `PID ${owner.pid} (${owner.command}) still holds port ${port} after SIGKILL. Stop it yourself or choose another port.`,
    { port, owner },
  )
}
