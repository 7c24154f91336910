/** Which cloudflared binary a tunnel runs: the one found, else (when allowed) a fresh install. */
import { cloudflaredNotFoundError, defaultInstallDir, findCloudflared } from '../find-binary'
import { installCloudflared } from '../install'
import type { InstallCloudflaredOptions } from '../install'
import type { TunnelLogger } from '../types'

/** The binary-related tunnel options (see `CloudflareTunnelOptions`). */
export interface BinaryOptions {
  readonly cloudflaredPath?: string
  readonly install?: boolean | Omit<InstallCloudflaredOptions, 'dir' | 'signal'>
  readonly installDir?: string
  readonly env?: NodeJS.ProcessEnv
}

/**
 * The path of the cloudflared to run: `cloudflaredPath`, `CLOUDFLARED_PATH`, `PATH` or the install
 * cache; else, with `install`, a checksum-verified download; else `TASKAPP_ERR_CLOUDFLARED_NOT_FOUND`.
 */
export async function resolveBinary(
  options: BinaryOptions,
  signal: AbortSignal | undefined,
  logger: TunnelLogger,
): Promise<string> {
  const env = options.env ?? process.env
  const installDir = options.installDir ?? defaultInstallDir(env)
  const found = await findCloudflared({ cloudflaredPath: options.cloudflaredPath, env, installDir })
  if (found !== undefined) return found.path
  const install = options.install
  if (install === undefined || install === false) throw cloudflaredNotFoundError(installDir)
  logger.info({ installDir }, 'cloudflared not found; installing a verified copy')
  const installed = await installCloudflared({
    ...(install === true ? {} : install),
    dir: installDir,
    signal,
  })
  logger.info(
    { path: installed.path, version: installed.version, sha256: installed.sha256 },
    'cloudflared installed',
  )
  return installed.path
}
