/**
 * PID records, the second guard against an orphaned cloudflared (Linux only; elsewhere a no-op).
 *
 * Each running cloudflared has a record `<pid>-<start>.json` in a private per-user folder
 * (`$XDG_RUNTIME_DIR/taskapp/cloudflared`, else `<tmpdir>/taskapp-<uid>/cloudflared`, mode 0700,
 * refused when not ours or open to others): its pid, its start time (field 22 of
 * `/proc/<pid>/stat`, clock ticks after boot), its command line, the boot id, and the pid and start
 * time of the process that started it (the owner). The record goes when cloudflared exits.
 *
 * Every tunnel start first sweeps the folder. A record whose owner is alive (same pid, same start
 * time) is left alone. Otherwise, when the recorded pid is still a live process with the recorded
 * start time and its command line ends with the recorded one, it is the orphan (a recycled pid has
 * another start time): it gets SIGTERM (cloudflared's graceful shutdown). Every record not kept is
 * deleted. This covers what the parent-death signal cannot: no setpriv, the signal switched off,
 * or both processes killed in the instant between fork and setpriv's `prctl`.
 */
import { lstat, mkdir, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import type { SupervisedProcess } from '../supervised-process'
import type { TunnelLogger } from '../types'

/** What a record holds. */
export interface PidRecord {
  readonly bootId: string
  readonly pid: number
  readonly startTime: string
  /** cloudflared's command line: `[file, ...args]` (a script's interpreter may precede it). */
  readonly argv: readonly string[]
  readonly ownerPid: number
  readonly ownerStartTime: string
}

const noop = () => {}

/** State (`R`, `S`, `Z`...) and start time of a live process, from `/proc/<pid>/stat`. */
export async function procStat(pid: number): Promise<{ state: string; startTime: string } | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const state = fields[0]
    const startTime = fields[19] // field 22: starttime
    if (state === undefined || startTime === undefined || state === 'Z' || state === 'X') return undefined
    return { state, startTime }
  } catch {
    return undefined
  }
}

let bootId: Promise<string> | undefined
function currentBootId(): Promise<string> {
  bootId ??= readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
    (s) => s.trim(),
    () => '',
  )
  return bootId
}

/** The private folder of the records, created when missing; `undefined` when it is not safe. */
export async function recordsDir(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const uid = process.getuid?.()
  if (uid === undefined) return undefined
  const runtime = env.XDG_RUNTIME_DIR
  const root =
    runtime !== undefined && isAbsolute(runtime) ? join(runtime, 'taskapp') : join(tmpdir(), `taskapp-${uid}`)
  const dir = join(root, 'cloudflared')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  for (const folder of [root, dir]) {
    const st = await lstat(folder)
    if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) return undefined
  }
  return dir
}

function isRecord(value: unknown): value is PidRecord {
  const r = value as Partial<PidRecord> | null
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.bootId === 'string' &&
    Number.isInteger(r.pid) &&
    (r.pid ?? 0) > 1 &&
    typeof r.startTime === 'string' &&
    Array.isArray(r.argv) &&
    r.argv.length > 0 &&
    r.argv.every((a) => typeof a === 'string') &&
    Number.isInteger(r.ownerPid) &&
    typeof r.ownerStartTime === 'string'
  )
}

/** The parsed record at `path`, or `undefined` when it is unreadable or not JSON. */
async function readRecord(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown
  } catch {
    return undefined
  }
}

/** Whether `argv` is the end of the live process's command line. */
async function commandMatches(pid: number, argv: readonly string[]): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
  const parts = cmdline.split('\0')
  if (parts.at(-1) === '') parts.pop()
  const tail = parts.slice(-argv.length)
  return tail.length === argv.length && tail.every((a, i) => a === argv[i])
}

/** `owned` (owner alive), `orphan` (owner gone, cloudflared still there) or `stale`. */
export async function judge(record: PidRecord): Promise<'owned' | 'orphan' | 'stale'> {
  if (record.bootId !== (await currentBootId())) return 'stale'
  const owner = await procStat(record.ownerPid)
  if (owner !== undefined && owner.startTime === record.ownerStartTime) return 'owned'
  if (record.pid === process.pid) return 'stale'
  const child = await procStat(record.pid)
  if (child === undefined || child.startTime !== record.startTime) return 'stale'
  return (await commandMatches(record.pid, record.argv)) ? 'orphan' : 'stale'
}

/**
 * Stops (SIGTERM) every recorded cloudflared whose owner died without stopping it, and deletes
 * records that are no longer needed. Returns the pids signalled. Never throws.
 */
export async function sweepOrphans(env: NodeJS.ProcessEnv, logger: TunnelLogger): Promise<number[]> {
  if (process.platform !== 'linux') return []
  const swept: number[] = []
  try {
    const dir = await recordsDir(env)
    if (dir === undefined) {
      logger.debug({}, 'cloudflared PID records skipped: their folder is not private to this user')
      return swept
    }
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json')) continue
      const path = join(dir, name)
      const record = await readRecord(path)
      const verdict = isRecord(record) ? await judge(record) : 'stale'
      if (verdict === 'owned') continue
      if (verdict === 'orphan' && isRecord(record)) {
        try {
          process.kill(record.pid, 'SIGTERM')
          swept.push(record.pid)
          logger.info(
            { pid: record.pid, ownerPid: record.ownerPid },
            'stopped an orphaned cloudflared (SIGTERM): the process that started it died without stopping it',
          )
        } catch {
          // gone meanwhile
        }
      }
      await unlink(path).catch(noop)
    }
  } catch (err) {
    logger.debug({ err }, 'cloudflared PID records could not be swept')
  }
  return swept
}

/**
 * Writes the record of `proc` once it started, and deletes it when it exits. Resolves when the
 * record is written (or could not be: said at DEBUG). Never rejects.
 */
export async function recordChild(
  proc: SupervisedProcess,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  logger: TunnelLogger,
): Promise<void> {
  if (process.platform !== 'linux') return
  try {
    const pid = await proc.spawned
    const dir = await recordsDir(env)
    const [child, owner, boot] = await Promise.all([procStat(pid), procStat(process.pid), currentBootId()])
    if (dir === undefined || child === undefined || owner === undefined) return
    const record: PidRecord = {
      bootId: boot,
      pid,
      startTime: child.startTime,
      argv,
      ownerPid: process.pid,
      ownerStartTime: owner.startTime,
    }
    const path = join(dir, `${pid}-${child.startTime}.json`)
    const tmp = join(dir, `.${pid}-${child.startTime}.tmp`)
    await writeFile(tmp, JSON.stringify(record), { mode: 0o600 })
    await rename(tmp, path)
    void proc.exited.then(() => unlink(path).catch(noop))
  } catch (err) {
    logger.debug({ err }, 'cloudflared PID record not written')
  }
}
