import { readFile, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { METRICS_LISTEN, cloudflaredEnv, namedTunnelArgs, prepareInvocation, quickTunnelArgs } from './args'

describe('cloudflared command lines', () => {
  it('quick: explicit config, extra flags, then the local URL and metrics on port 0', () => {
    expect(quickTunnelArgs('/tmp/x/config.yml', 'http://127.0.0.1:8114', ['--protocol', 'http2'])).toEqual([
      'tunnel',
      '--no-autoupdate',
      '--config',
      '/tmp/x/config.yml',
      '--protocol',
      'http2',
      '--url',
      'http://127.0.0.1:8114',
      '--metrics',
      '127.0.0.1:0',
    ])
    expect(METRICS_LISTEN).toBe('127.0.0.1:0')
  })

  it('named: metrics on port 0 and `run` last, no token in argv', () => {
    expect(namedTunnelArgs()).toEqual(['tunnel', '--no-autoupdate', '--metrics', '127.0.0.1:0', 'run'])
    expect(namedTunnelArgs(['--protocol', 'http2']).at(-1)).toBe('run')
  })

  it("drops the caller's TUNNEL_TOKEN / TUNNEL_TOKEN_FILE and sets only the tunnel's own token", () => {
    const base = { PATH: '/bin', TUNNEL_TOKEN: 'theirs', TUNNEL_TOKEN_FILE: '/their/file' }
    expect(cloudflaredEnv(base)).toEqual({ PATH: '/bin' })
    expect(cloudflaredEnv(base, 'mine')).toEqual({ PATH: '/bin', TUNNEL_TOKEN: 'mine' })
    expect(base.TUNNEL_TOKEN).toBe('theirs')
  })

  it('prepareInvocation writes a private {} config for a quick tunnel and cleanup() removes it', async () => {
    const inv = await prepareInvocation({ kind: 'quick', env: {} }, 'http://127.0.0.1:9')
    onTestFinished(() => inv.cleanup())
    const config = inv.args[inv.args.indexOf('--config') + 1]!
    expect(await readFile(config, 'utf8')).toBe('{}\n')
    await inv.cleanup()
    await inv.cleanup()
    await expect(stat(dirname(config))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('prepareInvocation for a named tunnel puts the token in the environment only', async () => {
    const inv = await prepareInvocation({ kind: 'named', token: 'tok', env: {} }, 'http://127.0.0.1:9')
    expect(inv.env).toEqual({ TUNNEL_TOKEN: 'tok' })
    expect(inv.args.join(' ')).not.toContain('tok')
  })
})
