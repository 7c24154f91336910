/** Finding the cloudflared binary: option, `CLOUDFLARED_PATH`, `PATH`, then the install cache. */
import { constants } from 'node:fs'
import { access, readdir, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { delimiter, join } from 'node:path'
import { CloudflareTunnelError } from './errors'

/**
 * Options of {@link findCloudflared}.
 *
 * @example
 * ```ts
 * await findCloudflared({ env: { PATH: '/usr/local/bin' } })
 * ```
 */
export interface FindCloudflaredOptions {
  /** Explicit path; when set it must be executable (no fallback). */
  readonly cloudflaredPath?: string
  /** Environment to read `CLOUDFLARED_PATH` and `PATH` from. @default process.env */
  readonly env?: NodeJS.ProcessEnv
  /** Install cache root. @default defaultInstallDir() */
  readonly installDir?: string
}

/**
 * The default install cache: `$XDG_CACHE_HOME/taskapp/cloudflared` (or `~/.cache/...`, or
 * `%LOCALAPPDATA%\taskapp\cloudflared` on Windows). Versions live in subfolders.
 *
 * @example
 * ```ts
 * defaultInstallDir() // '/home/me/.cache/taskapp/cloudflared'
 * ```
 */
export function defaultInstallDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CACHE_HOME ??
    (process.platform === 'win32' && env.LOCALAPPDATA !== undefined
      ? env.LOCALAPPDATA
      : join(homedir(), '.cache'))
  return join(base, 'taskapp', 'cloudflared')
}

/** File name of the binary on this platform. */
export function binaryName(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? 'cloudflared.exe' : 'cloudflared'
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    const info = await stat(path)
    if (!info.isFile()) return false
    await access(path, process.platform === 'win32' ? constants.F_OK : constants.X_OK)
    return true
  } catch {
    return false
  }
}

function compareVersionsDesc(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  const na = pa.some(Number.isNaN)
  const nb = pb.some(Number.isNaN)
  if (na !== nb) return na ? 1 : -1
  if (na) return b.localeCompare(a)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pb[i] ?? 0) - (pa[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/**
 * Where a binary was found.
 *
 * @example
 * ```ts
 * const found: FoundCloudflared | undefined = await findCloudflared() // { path, source: 'path' }
 * ```
 */
export interface FoundCloudflared {
  readonly path: string
  readonly source: 'option' | 'env' | 'path' | 'cache'
}

function notFound(source: 'option' | 'env', path: string): CloudflareTunnelError {
  const what = source === 'option' ? 'the cloudflaredPath option' : 'CLOUDFLARED_PATH'
  return new CloudflareTunnelError(
    'TASKAPP_ERR_CLOUDFLARED_NOT_FOUND',
    `cloudflared was not found at ${path} (from ${what}), or it is not an executable file. Fix the path, ` +
      `or remove it to let taskapp search PATH and its install cache.`,
    { cloudflaredPath: path, pathSource: source },
  )
}

/**
 * Looks for cloudflared: `cloudflaredPath`, then env `CLOUDFLARED_PATH`, then `PATH`, then the
 * newest version in the install cache. Resolves `undefined` when there is none; throws
 * `TASKAPP_ERR_CLOUDFLARED_NOT_FOUND` when an explicit path (option or env) is not executable.
 *
 * @example
 * ```ts
 * const found = await findCloudflared()
 * if (found) console.log(found.path, found.source)
 * ```
 */
export async function findCloudflared(
  options: FindCloudflaredOptions = {},
): Promise<FoundCloudflared | undefined> {
  const env = options.env ?? process.env
  if (options.cloudflaredPath !== undefined) {
    if (await isExecutable(options.cloudflaredPath))
      return { path: options.cloudflaredPath, source: 'option' }
    throw notFound('option', options.cloudflaredPath)
  }
  const fromEnv = env.CLOUDFLARED_PATH
  if (fromEnv !== undefined && fromEnv !== '') {
    if (await isExecutable(fromEnv)) return { path: fromEnv, source: 'env' }
    throw notFound('env', fromEnv)
  }
  const name = binaryName()
  for (const dir of (env.PATH ?? env.Path ?? '').split(delimiter)) {
    if (dir === '') continue
    const candidate = join(dir, name)
    if (await isExecutable(candidate)) return { path: candidate, source: 'path' }
  }
  const cache = options.installDir ?? defaultInstallDir(env)
  let versions: string[] = []
  try {
    versions = (await readdir(cache, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
  } catch {
    // no cache yet
  }
  for (const version of versions.sort(compareVersionsDesc)) {
    const candidate = join(cache, version, name)
    if (await isExecutable(candidate)) return { path: candidate, source: 'cache' }
  }
  return undefined
}

/** The NOT_FOUND error with install instructions. */
export function cloudflaredNotFoundError(installDir: string): CloudflareTunnelError {
  return new CloudflareTunnelError(
    'TASKAPP_ERR_CLOUDFLARED_NOT_FOUND',
    'cloudflared was not found (looked at the cloudflaredPath option, CLOUDFLARED_PATH, PATH and the install ' +
      `cache ${installDir}). Install it (https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/, ` +
      'e.g. `brew install cloudflared` or the .deb from the releases page), point the cloudflaredPath option or ' +
      'CLOUDFLARED_PATH at it, or pass `install: true` (an option of cloudflareQuickTunnel and cloudflareNamedTunnel) ' +
      'to let taskapp download a checksum-verified copy into the cache.',
    { installDir },
  )
}
