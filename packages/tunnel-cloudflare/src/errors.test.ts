import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  CloudflareTunnelError,
  cloudflareNamedTunnel,
  cloudflareQuickTunnel,
  installCloudflared,
  verifyTunnel,
} from './index'
import type { CloudflareTunnelErrorCode } from './index'
import { DOUBLE_PATH, startOrigin } from './test-helpers'

const target = { localUrl: 'http://127.0.0.1:9', port: 9, host: '127.0.0.1' }
const double = (env: Record<string, string>, extra: object = {}) => ({
  cloudflaredPath: DOUBLE_PATH,
  env: { ...process.env, CLOUDFLARED_DOUBLE_URL_DELAY_MS: '20', ...env },
  ...extra,
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cf-err-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const table: { code: CloudflareTunnelErrorCode; trigger: () => Promise<unknown>; says: RegExp }[] = [
  {
    code: 'TASKAPP_ERR_INVALID_OPTIONS',
    trigger: async () => cloudflareQuickTunnel({ timeoutMs: -1 }),
    says: /timeoutMs must be/,
  },
  {
    code: 'TASKAPP_ERR_INVALID_OPTIONS',
    trigger: async () => cloudflareNamedTunnel({ token: '', hostname: 'a.example.com' }),
    says: /token is required/,
  },
  {
    code: 'TASKAPP_ERR_INVALID_OPTIONS',
    trigger: async () => cloudflareNamedTunnel({ token: 't', hostname: 'a.example.com/path' }),
    says: /bare hostname/,
  },
  {
    code: 'TASKAPP_ERR_INVALID_OPTIONS',
    trigger: () => cloudflareQuickTunnel(double({})).open({ ...target, localUrl: 'ftp://x' }),
    says: /localUrl must be an http/,
  },
  {
    code: 'TASKAPP_ERR_CLOUDFLARED_NOT_FOUND',
    trigger: () => cloudflareQuickTunnel({ cloudflaredPath: '/nonexistent/cloudflared' }).open(target),
    says: /\/nonexistent\/cloudflared/,
  },
  {
    code: 'TASKAPP_ERR_CLOUDFLARED_SPAWN_FAILED',
    trigger: async () => {
      const path = join(await tempDir(), 'cloudflared')
      await writeFile(path, '#!/nonexistent/interpreter\n')
      await chmod(path, 0o755)
      return cloudflareQuickTunnel({ cloudflaredPath: path }).open(target)
    },
    says: /could not be started/,
  },
  {
    code: 'TASKAPP_ERR_CLOUDFLARED_EXITED',
    trigger: () => cloudflareQuickTunnel(double({ CLOUDFLARED_DOUBLE_MODE: 'exit-error' })).open(target),
    says: /exited with code 1 before the tunnel was ready[\s\S]*no such host/,
  },
  {
    code: 'TASKAPP_ERR_TUNNEL_TIMEOUT',
    trigger: () =>
      cloudflareQuickTunnel(double({ CLOUDFLARED_DOUBLE_MODE: 'no-url' }, { timeoutMs: 800 })).open(target),
    says: /printed no tunnel URL within 800 ms/,
  },
  {
    code: 'TASKAPP_ERR_TUNNEL_RATE_LIMITED',
    trigger: () => cloudflareQuickTunnel(double({ CLOUDFLARED_DOUBLE_MODE: 'rate-limit' })).open(target),
    says: /HTTP 429[\s\S]*Wait 5-10 minutes/,
  },
  {
    code: 'TASKAPP_ERR_TUNNEL_TOKEN_INVALID',
    trigger: () =>
      cloudflareNamedTunnel({ ...double({}), token: 'garbage', hostname: 'a.example.com' }).open(target),
    says: /refused the tunnel token/,
  },
  {
    code: 'TASKAPP_ERR_TUNNEL_VERIFY_FAILED',
    trigger: async () => {
      const dead = await startOrigin()
      await dead.close()
      return verifyTunnel(dead.url, { timeoutMs: 200, intervalMs: 20 })
    },
    says: /did not reach the app within 200 ms/,
  },
  {
    code: 'TASKAPP_ERR_INSTALL_UNSUPPORTED',
    trigger: () => installCloudflared({ platform: 'aix', arch: 'ppc64' }),
    says: /no release asset for aix\/ppc64/,
  },
  {
    code: 'TASKAPP_ERR_INSTALL_DOWNLOAD',
    trigger: async () => {
      const dead = await startOrigin()
      await dead.close()
      return installCloudflared({
        dir: await tempDir(),
        baseUrl: dead.url,
        sha256: 'a'.repeat(64),
        platform: 'linux',
        arch: 'x64',
      })
    },
    says: /Could not download/,
  },
  {
    code: 'TASKAPP_ERR_INSTALL_CHECKSUM',
    trigger: async () => {
      await using listing = await startOrigin(() => ({ status: 200, body: 'no checksums here' }))
      return await installCloudflared({
        dir: await tempDir(),
        checksumUrl: listing.url,
        platform: 'linux',
        arch: 'x64',
      })
    },
    says: /refusing to install an unverified binary/,
  },
]

describe('CloudflareTunnelError codes', () => {
  it.each(table)('$code ($says)', async ({ code, trigger, says }) => {
    const err = await trigger().then(
      (value) => {
        void (value as { close?: () => Promise<void> } | undefined)?.close?.()
        return undefined
      },
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(CloudflareTunnelError)
    const e = err as CloudflareTunnelError
    expect(e.name).toBe('CloudflareTunnelError')
    expect(e.code).toBe(code)
    expect(e.message).toMatch(says)
  })

  it('every code is in the README Errors table', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
    const source = await readFile(new URL('./errors.ts', import.meta.url), 'utf8')
    const codes = [...source.matchAll(/'(TASKAPP_ERR_[A-Z_]+)'/g)].map((m) => m[1])
    expect(codes.length).toBeGreaterThanOrEqual(11)
    for (const code of codes) expect(readme).toContain(`| \`${code}\``)
    for (const code of new Set(table.map((t) => t.code))) expect(codes).toContain(code)
    expect(new Set(table.map((t) => t.code)).size).toBe(new Set(codes).size)
  })

  it('keeps the cause', () => {
    const cause = new Error('root')
    const err = new CloudflareTunnelError('TASKAPP_ERR_INSTALL_DOWNLOAD', 'x', { cause, exitCode: 3 })
    expect(err.cause).toBe(cause)
    expect(err.exitCode).toBe(3)
    expect(err.lines).toEqual([])
  })
})
