/**
 * `tunnel: { mode: 'quick', install }` reaches tunnel-cloudflare's real, checksum-verified
 * installer. Nothing comes from the internet: the release "mirror" is a server on 127.0.0.1 (the
 * `baseUrl` the spec pins) serving the cloudflared test double as the release asset, with its
 * SHA-256. `PATH` and the install cache are empty folders, so cloudflared can only come from
 * the install.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { listenLoopback, recordingLogger } from '@taskapp/test-utils'
import { cloudflaredAssetName } from '@taskapp/tunnel-cloudflare'
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest'
import { InProcessTaskApp } from './in-process-task-app'
import { plainApp } from './test-helpers'

const DOUBLE = join(import.meta.dirname, '../../tunnel-cloudflare/src/fixtures/cloudflared-double.cjs')
const VERSION = '2026.8.2'

afterEach(() => {
  vi.unstubAllEnvs()
})

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

// The release assets exist for these platforms only (the double is a Node script either way).
describe.runIf(process.platform === 'linux' && ['x64', 'arm64'].includes(process.arch))(
  'tunnel.install pins a release: the real installer, fed by a loopback mirror',
  () => {
    it('downloads the pinned asset from baseUrl, checks its SHA-256, caches it and runs it', async () => {
      const asset = await readFile(DOUBLE)
      const hits: string[] = []
      await using mirror = await listenLoopback((req, res) => {
        hits.push(req.url ?? '')
        if (req.url === `/releases/download/${VERSION}/${cloudflaredAssetName()}`) {
          res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(asset)
        } else res.writeHead(404).end()
      })
      // PATH holds only `node` (the double's interpreter); the cache starts empty.
      const bin = await tempDir('in-process-bin-')
      await symlink(process.execPath, join(bin, 'node'))
      const cache = await tempDir('in-process-cache-')
      vi.stubEnv('PATH', bin)
      vi.stubEnv('CLOUDFLARED_PATH', undefined)
      vi.stubEnv('XDG_CACHE_HOME', cache)
      const logger = recordingLogger()
      await using app = await InProcessTaskApp.start({
        app: plainApp(),
        port: 0,
        handleSignals: false,
        logger,
        tunnel: {
          mode: 'quick',
          install: {
            version: VERSION,
            baseUrl: `${mirror.url}/releases`,
            sha256: createHash('sha256').update(asset).digest('hex'),
          },
        },
      })
      // the URL the installed copy (the double) printed: it ran
      expect(app.url).toMatch(/^https:\/\/[a-z0-9-]+\.trycloudflare\.com$/)
      expect(hits).toEqual([`/releases/download/${VERSION}/${cloudflaredAssetName()}`])
      expect(existsSync(join(cache, 'taskapp', 'cloudflared', VERSION, 'cloudflared'))).toBe(true)
      expect(logger.records).toContainEqual(
        expect.objectContaining({ level: 'info', msg: 'cloudflared not found; installing a verified copy' }),
      )
    })
  },
)
