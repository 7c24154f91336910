/**
 * The parent-death signal (Linux): cloudflared is exec'd through
 * `setpriv --pdeathsig SIGTERM -- <cloudflared> <args...>` (util-linux >= 2.33), which sets
 * `prctl(PR_SET_PDEATHSIG, SIGTERM)` and then execs cloudflared in the same process. The kernel then
 * sends cloudflared SIGTERM as soon as its parent, the watchdog, dies, however it dies: that covers
 * the one case the watchdog cannot, the watchdog and this process both SIGKILLed. The setting
 * survives the exec (cloudflared is not set-user-ID) and the command line is cloudflared's own
 * (no secret: the named-tunnel token stays in the environment).
 */
import { execFile } from 'node:child_process'
import { access, constants } from 'node:fs/promises'
import { delimiter, isAbsolute, join } from 'node:path'
import { CloudflareTunnelError } from '../errors'
import type { TunnelLogger } from '../types'

/** Environment switch: `0` turns the wrapper off; unset, empty or `1` leaves it on. */
export const PDEATHSIG_ENV = 'TASKAPP_CLOUDFLARED_PDEATHSIG'

/** The signal the kernel sends cloudflared when its parent dies (graceful in cloudflared). */
export const PDEATHSIG = 'SIGTERM'

/** The command cloudflared's own command line is appended to: `<setpriv> --pdeathsig SIGTERM --`. */
export function wrapperCommand(setpriv: string): string[] {
  return [setpriv, '--pdeathsig', PDEATHSIG, '--']
}

/** Where to look for setpriv: the absolute `PATH` entries, then the usual system folders. */
export function setprivCandidates(path = process.env.PATH ?? ''): string[] {
  const dirs = [...path.split(delimiter), '/usr/bin', '/bin', '/usr/sbin', '/sbin']
  return [...new Set(dirs.filter((d) => d !== '' && isAbsolute(d)).map((d) => join(d, 'setpriv')))]
}

/** Whether `setpriv` at `file` really sets a parent-death signal and execs (one short run). */
function probe(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      file,
      [...wrapperCommand(file).slice(1), file, '--version'],
      { timeout: 5_000, windowsHide: true },
      (err, stdout) => resolve(err === null && stdout.includes('setpriv')),
    )
  })
}

/** The first candidate that is executable and passes the probe, or `undefined`. */
export async function findSetpriv(candidates: readonly string[]): Promise<string | undefined> {
  for (const file of candidates) {
    const executable = await access(file, constants.X_OK).then(
      () => true,
      () => false,
    )
    if (executable && (await probe(file))) return file
  }
  return undefined
}

let cached: Promise<string | undefined> | undefined

/**
 * The setpriv to exec cloudflared through, or `undefined` (not Linux, switched off with
 * `TASKAPP_CLOUDFLARED_PDEATHSIG=0`, or no setpriv with `--pdeathsig`: then the watchdog and the
 * PID records are the only guards, said at DEBUG). Found once per process.
 */
export async function parentDeathWrapper(
  env: NodeJS.ProcessEnv,
  logger: TunnelLogger,
): Promise<string | undefined> {
  const setting = env[PDEATHSIG_ENV]
  if (setting !== undefined && setting !== '' && setting !== '0' && setting !== '1') {
    throw new CloudflareTunnelError(
      'TASKAPP_ERR_INVALID_OPTIONS',
      `${PDEATHSIG_ENV} must be 0 (no parent-death signal for cloudflared) or 1 (the default), got ${JSON.stringify(setting)}.`,
    )
  }
  if (process.platform !== 'linux') return undefined
  if (setting === '0') {
    logger.debug({ [PDEATHSIG_ENV]: setting }, 'cloudflared parent-death signal switched off')
    return undefined
  }
  cached ??= findSetpriv(setprivCandidates())
  const found = await cached
  if (found === undefined) {
    logger.debug(
      {},
      'setpriv with --pdeathsig (util-linux >= 2.33) not found: cloudflared gets no parent-death ' +
        'signal; if this process and its watchdog are both SIGKILLed, the next tunnel start stops it',
    )
  }
  return found
}
