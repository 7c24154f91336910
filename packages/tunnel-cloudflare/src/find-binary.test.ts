import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { CloudflareTunnelError, cloudflareQuickTunnel, defaultInstallDir, findCloudflared } from './index'

async function layout() {
  const root = await mkdtemp(join(tmpdir(), 'cf-find-'))
  onTestFinished(() => rm(root, { recursive: true, force: true }))
  const exe = async (path: string, mode = 0o755) => {
    await mkdir(join(path, '..'), { recursive: true })
    await writeFile(path, '#!/bin/sh\necho fake\n')
    await chmod(path, mode)
    return path
  }
  return { root, exe }
}

describe.skipIf(process.platform === 'win32')('findCloudflared', () => {
  it('searches the option, then CLOUDFLARED_PATH, then PATH, then the newest cached version', async () => {
    const { root, exe } = await layout()
    const option = await exe(join(root, 'opt', 'my-cloudflared'))
    const fromEnv = await exe(join(root, 'env', 'cloudflared'))
    const onPath = await exe(join(root, 'bin2', 'cloudflared'))
    await exe(join(root, 'bin1', 'cloudflared'), 0o644) // not executable: skipped
    const cache = join(root, 'cache')
    await exe(join(cache, '2025.11.0', 'cloudflared'))
    const newest = await exe(join(cache, '2026.10.1', 'cloudflared'))
    await exe(join(cache, '2026.9.0', 'cloudflared'))
    const PATH = [join(root, 'bin1'), join(root, 'bin2')].join(':')

    const cases = [
      {
        opts: { cloudflaredPath: option, env: { CLOUDFLARED_PATH: fromEnv, PATH } },
        want: { path: option, source: 'option' },
      },
      { opts: { env: { CLOUDFLARED_PATH: fromEnv, PATH } }, want: { path: fromEnv, source: 'env' } },
      { opts: { env: { PATH } }, want: { path: onPath, source: 'path' } },
      { opts: { env: { PATH: join(root, 'bin1') } }, want: { path: newest, source: 'cache' } },
    ]
    for (const { opts, want } of cases) {
      expect(await findCloudflared({ ...opts, installDir: cache })).toEqual(want)
    }
    expect(await findCloudflared({ env: { PATH: '' }, installDir: join(root, 'nothing') })).toBeUndefined()
  })

  it.each([
    { what: 'option', source: 'option', opts: (p: string) => ({ cloudflaredPath: p, env: {} }) },
    { what: 'CLOUDFLARED_PATH', source: 'env', opts: (p: string) => ({ env: { CLOUDFLARED_PATH: p } }) },
  ])('an explicit $what that is not executable is an error, not a fallback', async ({ opts, source }) => {
    const { root, exe } = await layout()
    const bad = await exe(join(root, 'cloudflared'), 0o644)
    const err = await findCloudflared(opts(bad)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CloudflareTunnelError)
    expect((err as CloudflareTunnelError).code).toBe('TASKAPP_ERR_CLOUDFLARED_NOT_FOUND')
    expect((err as CloudflareTunnelError).message).toContain(bad)
    // the facts, for callers that word the error their own way
    expect(err).toMatchObject({ cloudflaredPath: bad, pathSource: source, installDir: undefined })
  })

  it('open() without a binary rejects with TASKAPP_ERR_CLOUDFLARED_NOT_FOUND naming install: true', async () => {
    const { root } = await layout()
    const err = await cloudflareQuickTunnel({ env: { PATH: '' }, installDir: join(root, 'empty') })
      .open({ localUrl: 'http://127.0.0.1:9', port: 9, host: '127.0.0.1' })
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'CloudflareTunnelError', code: 'TASKAPP_ERR_CLOUDFLARED_NOT_FOUND' })
    expect((err as Error).message).toContain('install: true')
    expect((err as Error).message).toContain(join(root, 'empty'))
    expect(err).toMatchObject({ installDir: join(root, 'empty'), cloudflaredPath: undefined })
  })

  it('defaultInstallDir honours XDG_CACHE_HOME', () => {
    expect(defaultInstallDir({ XDG_CACHE_HOME: '/x/cache' })).toBe(join('/x/cache', 'taskapp', 'cloudflared'))
  })
})
