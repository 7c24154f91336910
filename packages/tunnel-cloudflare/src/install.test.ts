import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  CloudflareTunnelError,
  cloudflaredAssetName,
  cloudflareQuickTunnel,
  installCloudflared,
  parseChecksums,
} from './index'
import { DOUBLE_PATH, startOrigin, targetFor } from './test-helpers'

const run = promisify(execFile)
const VERSION = '2026.8.2'

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** A release mirror on 127.0.0.1 serving the double as the cloudflared asset. */
async function startMirror(routes: Record<string, (res: ServerResponse) => void> = {}) {
  const asset = await readFile(DOUBLE_PATH)
  const hits: string[] = []
  const server = createServer((req, res) => {
    const path = req.url ?? '/'
    hits.push(path)
    const route = routes[path]
    if (route !== undefined) return route(res)
    if (path === `/releases/download/${VERSION}/${cloudflaredAssetName()}`) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      res.end(asset)
      return
    }
    res.writeHead(404).end('not found')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  const address = server.address()
  const base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  return { base, baseUrl: `${base}/releases`, asset, digest: sha256(asset), hits }
}

async function expectInstallError(promise: Promise<unknown>, code: string): Promise<CloudflareTunnelError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(CloudflareTunnelError)
  expect((err as CloudflareTunnelError).code).toBe(code)
  return err as CloudflareTunnelError
}

describe.skipIf(process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch))(
  'installCloudflared',
  () => {
    it('installs a download whose checksum matches, atomically, with the run bit; it runs; then it is cached', async () => {
      const mirror = await startMirror()
      const dir = await tempDir('cf-install-')
      const installed = await installCloudflared({
        version: VERSION,
        dir,
        baseUrl: mirror.baseUrl,
        sha256: mirror.digest,
      })
      expect(installed).toEqual({
        path: join(dir, VERSION, 'cloudflared'),
        version: VERSION,
        sha256: mirror.digest,
        cached: false,
      })
      expect((await stat(installed.path)).mode & 0o777).toBe(0o755)
      expect(await readdir(join(dir, VERSION))).toEqual(['cloudflared'])
      const { stdout } = await run(installed.path, ['--version'])
      expect(stdout).toMatch(/^cloudflared version 2026\.8\.2 /)

      const again = await installCloudflared({
        version: VERSION,
        dir,
        baseUrl: mirror.baseUrl,
        sha256: mirror.digest,
      })
      expect(again.cached).toBe(true)
      expect(mirror.hits.filter((h) => h.includes('/download/'))).toHaveLength(1)
    })

    it('refuses a download whose checksum does not match and leaves nothing behind', async () => {
      const mirror = await startMirror()
      const dir = await tempDir('cf-install-')
      const wrong = 'f'.repeat(64)
      const err = await expectInstallError(
        installCloudflared({ version: VERSION, dir, baseUrl: mirror.baseUrl, sha256: wrong }),
        'TASKAPP_ERR_INSTALL_CHECKSUM',
      )
      expect(err.message).toContain(mirror.digest)
      expect(err.message).toContain(wrong)
      expect(mirror.hits).toHaveLength(1)
      expect(await readdir(dir)).toEqual([]) // no temp file, no final file, no version folder
    })

    it.each([
      {
        form: 'GitHub release JSON with asset digests',
        body: (digest: string) =>
          JSON.stringify({
            tag_name: VERSION,
            assets: [{ name: cloudflaredAssetName(), digest: `sha256:${digest}` }],
          }),
      },
      {
        form: 'GitHub release JSON with the checksum list in the notes',
        body: (digest: string) =>
          JSON.stringify({
            tag_name: VERSION,
            body: `SHA256 Checksums:\n\`\`\`\n${cloudflaredAssetName()}: ${digest}\ncloudflared-x: ${'0'.repeat(64)}\n\`\`\``,
          }),
      },
    ])(
      'fetches the checksum when none is given ($form) and resolves "latest" to the tag',
      async ({ body }) => {
        const mirror = await startMirror()
        const text = body(mirror.digest)
        const routes = {
          '/api/latest': (res: ServerResponse) =>
            res.writeHead(200, { 'content-type': 'application/json' }).end(text),
        }
        const mirror2 = await startMirror(routes)
        const dir = await tempDir('cf-install-')
        const installed = await installCloudflared({
          dir,
          baseUrl: mirror2.baseUrl,
          checksumUrl: `${mirror2.base}/api/latest`,
        })
        expect(installed.version).toBe(VERSION)
        expect(installed.cached).toBe(false)
        expect(mirror2.hits).toEqual([
          '/api/latest',
          `/releases/download/${VERSION}/${cloudflaredAssetName()}`,
        ])
      },
    )

    it('refuses to install when no checksum can be found for the asset, downloading nothing', async () => {
      const routes = {
        '/sums': (res: ServerResponse) => res.writeHead(200).end(`${'a'.repeat(64)}  cloudflared-other\n`),
      }
      const mirror = await startMirror(routes)
      const dir = await tempDir('cf-install-')
      const err = await expectInstallError(
        installCloudflared({
          version: VERSION,
          dir,
          baseUrl: mirror.baseUrl,
          checksumUrl: `${mirror.base}/sums`,
        }),
        'TASKAPP_ERR_INSTALL_CHECKSUM',
      )
      expect(err.message).toContain('refusing to install an unverified binary')
      expect(mirror.hits).toEqual(['/sums'])
      expect(await readdir(dir)).toEqual([])
    })

    it('reports a failed download as TASKAPP_ERR_INSTALL_DOWNLOAD and leaves nothing behind', async () => {
      const mirror = await startMirror()
      const dir = await tempDir('cf-install-')
      const err = await expectInstallError(
        installCloudflared({ version: '2020.1.1', dir, baseUrl: mirror.baseUrl, sha256: mirror.digest }),
        'TASKAPP_ERR_INSTALL_DOWNLOAD',
      )
      expect(err.message).toContain('HTTP 404')
      expect(await readdir(dir)).toEqual([])
    })

    it('rejects with signal.reason when aborted mid-download and leaves nothing behind', async () => {
      const controller = new AbortController()
      const reason = new Error('stop the download')
      const asset = `/releases/download/${VERSION}/${cloudflaredAssetName()}`
      const routes = {
        [asset]: (res: ServerResponse) => {
          res.writeHead(200, { 'content-length': '100000' })
          // Half a body, then the client aborts (the response never ends on its own).
          res.write(Buffer.alloc(50_000, 1), () => controller.abort(reason))
        },
      }
      const mirror = await startMirror(routes)
      const dir = await tempDir('cf-install-')
      const err = await installCloudflared({
        version: VERSION,
        dir,
        baseUrl: mirror.baseUrl,
        sha256: mirror.digest,
        signal: controller.signal,
      }).catch((e: unknown) => e)
      expect(err).toBe(reason)
      expect(await readdir(dir)).toEqual([])
    })

    it('installs from a macOS-style .tgz asset by extracting the cloudflared entry', async () => {
      const work = await tempDir('cf-tgz-')
      await mkdir(join(work, 'pkg'))
      await copyFile(DOUBLE_PATH, join(work, 'pkg', 'cloudflared'))
      await run('tar', ['-czf', join(work, 'asset.tgz'), '-C', join(work, 'pkg'), 'cloudflared'])
      const tgz = await readFile(join(work, 'asset.tgz'))
      const routes = {
        [`/releases/download/${VERSION}/cloudflared-darwin-arm64.tgz`]: (res: ServerResponse) =>
          res.writeHead(200).end(tgz),
      }
      const mirror = await startMirror(routes)
      const dir = await tempDir('cf-install-')
      const installed = await installCloudflared({
        version: VERSION,
        dir,
        baseUrl: mirror.baseUrl,
        sha256: sha256(tgz),
        platform: 'darwin',
        arch: 'arm64',
      })
      expect(await readFile(installed.path)).toEqual(mirror.asset)
      const { stdout } = await run(installed.path, ['--version'])
      expect(stdout).toContain('cloudflared version')
      const again = await installCloudflared({
        version: VERSION,
        dir,
        baseUrl: mirror.baseUrl,
        sha256: sha256(tgz),
        platform: 'darwin',
        arch: 'arm64',
      })
      expect(again.cached).toBe(true)
    })

    it('lets a tunnel install cloudflared on demand with install: {...} and then run it', async () => {
      const mirror = await startMirror()
      const dir = await tempDir('cf-install-')
      // PATH holds only `node` (the double's interpreter), so there is no cloudflared to find.
      const bin = await tempDir('cf-bin-')
      await symlink(process.execPath, join(bin, 'node'))
      await using origin = await startOrigin()
      await using tunnel = await cloudflareQuickTunnel({
        installDir: dir,
        install: { version: VERSION, baseUrl: mirror.baseUrl, sha256: mirror.digest },
        env: { PATH: bin, CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50' },
      }).open(targetFor(origin))
      expect(tunnel.url).toMatch(/^https:\/\/[a-z-]+\.trycloudflare\.com$/)
      expect(await readdir(join(dir, VERSION))).toEqual(['cloudflared'])
    })
  },
)

describe('install helpers', () => {
  it.each([
    ['linux', 'x64', 'cloudflared-linux-amd64'],
    ['linux', 'arm64', 'cloudflared-linux-arm64'],
    ['linux', 'arm', 'cloudflared-linux-arm'],
    ['linux', 'ia32', 'cloudflared-linux-386'],
    ['win32', 'x64', 'cloudflared-windows-amd64.exe'],
    ['darwin', 'arm64', 'cloudflared-darwin-arm64.tgz'],
    ['darwin', 'x64', 'cloudflared-darwin-amd64.tgz'],
  ] as const)('asset for %s/%s is %s', (platform, arch, name) => {
    expect(cloudflaredAssetName(platform, arch)).toBe(name)
  })

  it('throws TASKAPP_ERR_INSTALL_UNSUPPORTED for a platform without an asset', async () => {
    expect(() => cloudflaredAssetName('aix', 'ppc64')).toThrow(
      expect.objectContaining({ code: 'TASKAPP_ERR_INSTALL_UNSUPPORTED' }),
    )
    await expect(installCloudflared({ platform: 'aix', arch: 'ppc64' })).rejects.toMatchObject({
      code: 'TASKAPP_ERR_INSTALL_UNSUPPORTED',
    })
  })

  it.each([{ sha256: 'xyz' }, { version: '../../etc' }, { version: '' }, { version: 'a/b' }])(
    'rejects %j before any download',
    async (bad) => {
      await expect(installCloudflared({ ...bad, baseUrl: 'http://127.0.0.1:9' })).rejects.toMatchObject({
        code: 'TASKAPP_ERR_INVALID_OPTIONS',
      })
    },
  )

  it('parses sha256sum text, "name: hex" lists and release JSON', () => {
    const hex = 'ab'.repeat(32)
    expect(parseChecksums(`${hex}  cloudflared-linux-amd64\n`, 'cloudflared-linux-amd64')).toEqual({
      sha256: hex,
      tag: undefined,
    })
    expect(parseChecksums(`${hex} *cloudflared-linux-amd64`, 'cloudflared-linux-amd64').sha256).toBe(hex)
    expect(
      parseChecksums(`cloudflared-linux-amd64: ${hex.toUpperCase()}`, 'cloudflared-linux-amd64').sha256,
    ).toBe(hex)
    // A longer asset name sharing a prefix is not a match.
    expect(
      parseChecksums(`cloudflared-linux-amd64.deb: ${hex}`, 'cloudflared-linux-amd64').sha256,
    ).toBeUndefined()
    expect(parseChecksums('{"tag_name":"2026.1.0","assets":[]}', 'x')).toEqual({ tag: '2026.1.0' })
  })
})
