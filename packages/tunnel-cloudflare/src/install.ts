/**
 * Downloading cloudflared: the release asset for this platform, verified against a SHA-256 that
 * is given or fetched, written to a temporary file, then chmod 755 and renamed into the cache
 * (`<dir>/<version>/cloudflared`). A failed or refused download leaves nothing behind.
 */
import { createHash, randomBytes } from 'node:crypto'
import { open, chmod, mkdir, readFile, rename, rmdir, unlink } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { fetch } from 'undici'
import { CloudflareTunnelError } from './errors'
import { binaryName, defaultInstallDir } from './find-binary'

/**
 * Default release download base.
 *
 * @example
 * ```ts
 * await installCloudflared({ baseUrl: DEFAULT_RELEASES_URL })
 * ```
 */
export const DEFAULT_RELEASES_URL = 'https://github.com/cloudflare/cloudflared/releases'
/**
 * Default release metadata base (GitHub API), where checksums are read from.
 *
 * @example
 * ```ts
 * await installCloudflared({ checksumUrl: `${DEFAULT_RELEASES_API_URL}/tags/2026.8.2` })
 * ```
 */
export const DEFAULT_RELEASES_API_URL = 'https://api.github.com/repos/cloudflare/cloudflared/releases'

/**
 * Options of {@link installCloudflared}.
 *
 * @example
 * ```ts
 * const options: InstallCloudflaredOptions = { version: '2026.8.2', sha256: '…64 hex…' }
 * ```
 */
export interface InstallCloudflaredOptions {
  /** Release tag, e.g. `2026.8.2`. @default 'latest' */
  readonly version?: string
  /** Install cache root; the binary goes to `<dir>/<version>/cloudflared`. @default defaultInstallDir() */
  readonly dir?: string
  /** Release download base: assets are `<baseUrl>/download/<version>/<asset>`. @default DEFAULT_RELEASES_URL */
  readonly baseUrl?: string
  /** Expected SHA-256 (hex) of the asset. When absent it is fetched from `checksumUrl`. */
  readonly sha256?: string
  /**
   * Where to read the checksum from: GitHub release JSON (asset `digest` or the `SHA256 Checksums`
   * list in `body`), or a text file in `sha256sum` or `<asset>: <hex>` form.
   * @default `${DEFAULT_RELEASES_API_URL}/tags/<version>` (or `/latest`)
   */
  readonly checksumUrl?: string
  /** Target platform. @default process.platform */
  readonly platform?: NodeJS.Platform
  /** Target architecture. @default process.arch */
  readonly arch?: string
  /** Download again even when a verified copy is cached. @default false */
  readonly force?: boolean
  /** Overall deadline. @default 120000 */
  readonly timeoutMs?: number
  /** Cancels the install; rejects with `signal.reason`. */
  readonly signal?: AbortSignal
}

/**
 * Result of {@link installCloudflared}.
 *
 * @example
 * ```ts
 * const { path, cached } = await installCloudflared()
 * ```
 */
export interface InstalledCloudflared {
  /** Absolute path of the executable. */
  readonly path: string
  /** Version folder it lives in (the resolved tag when `latest` was asked for). */
  readonly version: string
  /** SHA-256 of the downloaded asset. */
  readonly sha256: string
  /** `true` when a verified cached copy was reused and nothing was downloaded. */
  readonly cached: boolean
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' }

/**
 * The release asset name for a platform/arch, e.g. `cloudflared-linux-amd64`.
 *
 * @example
 * ```ts
 * cloudflaredAssetName('darwin', 'arm64') // 'cloudflared-darwin-arm64.tgz'
 * ```
 */
export function cloudflaredAssetName(
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): string {
  const a = ARCH[arch]
  if (platform === 'linux' && a !== undefined) return `cloudflared-linux-${a}`
  if (platform === 'win32' && (a === 'amd64' || a === '386')) return `cloudflared-windows-${a}.exe`
  if (platform === 'darwin' && (a === 'amd64' || a === 'arm64')) return `cloudflared-darwin-${a}.tgz`
  throw new CloudflareTunnelError(
    'TASKAPP_ERR_INSTALL_UNSUPPORTED',
    `cloudflared publishes no release asset for ${platform}/${arch}. Install it with your package manager and ` +
      'pass cloudflaredPath (or set CLOUDFLARED_PATH).',
  )
}

/**
 * Finds the SHA-256 of `asset` in release metadata or a checksum file, and the release tag when
 * the text is GitHub release JSON.
 *
 * @example
 * ```ts
 * parseChecksums('abc…64hex  cloudflared-linux-amd64\n', 'cloudflared-linux-amd64').sha256
 * ```
 */
export function parseChecksums(text: string, asset: string): { sha256?: string; tag?: string } {
  let body = text
  let tag: string | undefined
  try {
    const json = JSON.parse(text) as { tag_name?: unknown; body?: unknown; assets?: unknown }
    if (typeof json.tag_name === 'string') tag = json.tag_name
    if (Array.isArray(json.assets)) {
      for (const a of json.assets as { name?: unknown; digest?: unknown }[]) {
        if (a.name === asset && typeof a.digest === 'string' && /^sha256:[0-9a-f]{64}$/i.test(a.digest)) {
          return { sha256: a.digest.slice(7).toLowerCase(), tag }
        }
      }
    }
    body = typeof json.body === 'string' ? json.body : ''
  } catch {
    // plain text
  }
  const escaped = asset.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const forms = [
    new RegExp(`^\\s*([0-9a-f]{64})\\s+\\*?${escaped}\\s*$`, 'im'),
    new RegExp(`^\\s*[-*]?\\s*${escaped}\\s*:\\s*([0-9a-f]{64})\\s*$`, 'im'),
  ]
  for (const re of forms) {
    const m = re.exec(body)
    if (m?.[1] !== undefined) return { sha256: m[1].toLowerCase(), tag }
  }
  return { tag }
}

/** Extracts the file named `cloudflared` from a .tgz (ustar) archive. */
export function extractFromTgz(archive: Uint8Array, name = 'cloudflared'): Buffer {
  const tar = gunzipSync(archive)
  let offset = 0
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512)
    if (header.every((b) => b === 0)) break
    const field = (from: number, len: number) =>
      header
        .subarray(from, from + len)
        .toString('latin1')
        .replace(/\0.*$/s, '')
    const prefix = field(345, 155)
    const entry = (prefix === '' ? '' : `${prefix}/`) + field(0, 100)
    const size = parseInt(field(124, 12).trim() || '0', 8)
    const type = field(156, 1)
    const start = offset + 512
    if ((type === '' || type === '0') && entry.split('/').pop() === name) {
      return tar.subarray(start, start + size)
    }
    offset = start + Math.ceil(size / 512) * 512
  }
  throw new Error(`no file named ${name} in the archive`)
}

function asDownloadError(err: unknown, what: string, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted === true) return signal.reason
  if (err instanceof CloudflareTunnelError) return err
  return new CloudflareTunnelError(
    'TASKAPP_ERR_INSTALL_DOWNLOAD',
    `Could not download ${what}: ${(err as Error).message}. Check the network (or baseUrl), or install cloudflared ` +
      'yourself and pass cloudflaredPath.',
    { cause: err },
  )
}

async function sha256File(path: string): Promise<string | undefined> {
  try {
    return createHash('sha256')
      .update(await readFile(path))
      .digest('hex')
  } catch {
    return undefined
  }
}

/**
 * The SHA-256 of `asset` from the release metadata (or `checksumUrl`); for `latest`, also the tag
 * it names. Refuses (`TASKAPP_ERR_INSTALL_CHECKSUM`) when the list has no sum for the asset.
 */
async function fetchChecksum(
  checksumUrlOption: string | undefined,
  asset: string,
  version: string,
  signal: AbortSignal,
  userSignal: AbortSignal | undefined,
): Promise<{ sha256: string; version: string }> {
  const checksumUrl =
    checksumUrlOption ??
    `${DEFAULT_RELEASES_API_URL}/${version === 'latest' ? 'latest' : `tags/${encodeURIComponent(version)}`}`
  let text: string
  try {
    const res = await fetch(checksumUrl, { signal, headers: { accept: 'application/json, text/plain' } })
    if (!res.ok) throw new Error(`HTTP ${res.status} from ${checksumUrl}`)
    text = await res.text()
  } catch (err) {
    throw asDownloadError(err, `the checksum list (${checksumUrl})`, userSignal)
  }
  const parsed = parseChecksums(text, asset)
  if (parsed.sha256 === undefined) {
    throw new CloudflareTunnelError(
      'TASKAPP_ERR_INSTALL_CHECKSUM',
      `No SHA-256 for ${asset} was found at ${checksumUrl}; refusing to install an unverified binary. ` +
        'Pass the sha256 option (from the release notes) or a checksumUrl.',
    )
  }
  const tag = version === 'latest' && parsed.tag !== undefined ? checkVersion(parsed.tag) : version
  return { sha256: parsed.sha256, version: tag }
}

/**
 * Downloads `url` into the new file `tmpPath` (the `cloudflared` entry only, for a .tgz), and
 * throws `TASKAPP_ERR_INSTALL_CHECKSUM` unless the download's SHA-256 is `expected`.
 */
async function downloadVerified(job: {
  url: string
  asset: string
  expected: string
  tmpPath: string
  signal: AbortSignal
  userSignal: AbortSignal | undefined
}): Promise<void> {
  const { url, asset, expected, tmpPath, signal, userSignal } = job
  const hash = createHash('sha256')
  const file = await open(tmpPath, 'wx', 0o755)
  try {
    const res = await fetch(url, { signal }).catch((err: unknown) => {
      throw asDownloadError(err, url, userSignal)
    })
    if (!res.ok || res.body === null) {
      await res.body?.cancel()
      throw asDownloadError(new Error(`HTTP ${res.status}`), url, userSignal)
    }
    const chunks: Buffer[] = []
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        hash.update(chunk)
        if (asset.endsWith('.tgz')) chunks.push(Buffer.from(chunk))
        else await file.write(chunk)
      }
    } catch (err) {
      throw asDownloadError(err, url, userSignal)
    }
    const actual = hash.digest('hex')
    if (actual !== expected) {
      throw new CloudflareTunnelError(
        'TASKAPP_ERR_INSTALL_CHECKSUM',
        `The download of ${asset} from ${url} has SHA-256 ${actual}, expected ${expected}; it was deleted and not ` +
          'installed. Check the version and checksum (or the mirror at baseUrl).',
      )
    }
    if (asset.endsWith('.tgz')) await file.write(extractFromTgz(Buffer.concat(chunks)))
    await file.sync()
  } finally {
    await file.close()
  }
}

/**
 * Downloads the cloudflared release asset for this platform, verifies its SHA-256 (given, or
 * fetched from the release metadata), and installs it atomically into the cache. A verified
 * cached copy is reused. Only runs when called (or with `install: true` on a tunnel).
 *
 * @example
 * ```ts
 * const { path } = await installCloudflared({ version: '2026.8.2', sha256: '…' })
 * await using tunnel = await cloudflareQuickTunnel({ cloudflaredPath: path }).open(target)
 * ```
 */
export async function installCloudflared(
  options: InstallCloudflaredOptions = {},
): Promise<InstalledCloudflared> {
  const platform = options.platform ?? process.platform
  const asset = cloudflaredAssetName(platform, options.arch ?? process.arch)
  if (options.sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(options.sha256)) {
    throw new CloudflareTunnelError(
      'TASKAPP_ERR_INVALID_OPTIONS',
      'installCloudflared: sha256 must be 64 hex characters.',
    )
  }
  checkVersion(options.version ?? 'latest')
  const userSignal = options.signal
  userSignal?.throwIfAborted()
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 120_000)
  const signal = userSignal === undefined ? timeout : AbortSignal.any([userSignal, timeout])
  const baseUrl = (options.baseUrl ?? DEFAULT_RELEASES_URL).replace(/\/+$/, '')
  const dir = options.dir ?? defaultInstallDir()
  const requested = options.version ?? 'latest'
  // The sum to verify against (given, or from the release metadata, which also names `latest`).
  const { sha256: expected, version } =
    options.sha256 === undefined
      ? await fetchChecksum(options.checksumUrl, asset, requested, signal, userSignal)
      : { sha256: options.sha256.toLowerCase(), version: requested }

  const targetDir = join(dir, version)
  const finalPath = join(targetDir, binaryName(platform))
  if (options.force !== true) {
    // A cached .tgz install stores the asset hash beside it; a plain binary is hashed directly.
    const cachedOk = asset.endsWith('.tgz')
      ? (await readFile(`${finalPath}.sha256`, 'utf8').catch(() => '')).trim() === expected &&
        (await sha256File(finalPath)) !== undefined
      : (await sha256File(finalPath)) === expected
    if (cachedOk) return { path: finalPath, version, sha256: expected, cached: true }
  }

  const url =
    version === 'latest' ? `${baseUrl}/latest/download/${asset}` : `${baseUrl}/download/${version}/${asset}`
  const created = await mkdir(targetDir, { recursive: true })
  const tmpPath = join(
    targetDir,
    `.${binaryName(platform)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  )
  let renamed = false
  let sidecar = false
  try {
    await downloadVerified({ url, asset, expected, tmpPath, signal, userSignal })
    await chmod(tmpPath, 0o755)
    if (asset.endsWith('.tgz')) {
      sidecar = true
      await writeSidecar(`${finalPath}.sha256`, expected)
    }
    await rename(tmpPath, finalPath)
    renamed = true
    return { path: finalPath, version, sha256: expected, cached: false }
  } finally {
    if (!renamed) {
      await unlink(tmpPath).catch(() => {})
      if (sidecar) await unlink(`${finalPath}.sha256`).catch(() => {})
      if (created !== undefined) await removeEmptyDirs(targetDir, created)
    }
  }
}

/** A version becomes a folder name: allow tags like `2026.8.2` only, never a path. */
function checkVersion(version: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(version) || version.includes('..')) {
    throw new CloudflareTunnelError(
      'TASKAPP_ERR_INVALID_OPTIONS',
      `installCloudflared: version must be a release tag like 2026.8.2 or 'latest', got ${JSON.stringify(version)}.`,
    )
  }
  return version
}

async function writeSidecar(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', 0o644)
  try {
    await fh.writeFile(`${content}\n`)
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
}

/** Removes `from` and its parents up to and including `top`, as long as they are empty. */
async function removeEmptyDirs(from: string, top: string): Promise<void> {
  let current = from
  for (;;) {
    try {
      await rmdir(current)
    } catch {
      return
    }
    if (current === top || relative(top, current).startsWith('..') || !current.includes(sep)) return
    current = dirname(current)
  }
}
