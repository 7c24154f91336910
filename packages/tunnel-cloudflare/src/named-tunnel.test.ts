import { recordingLogger } from '@taskapp/test-utils'
import { describe, expect, it } from 'vitest'
import { CloudflareTunnelError, cloudflareNamedTunnel } from './index'
import {
  DOUBLE_PATH,
  fakeToken,
  getJson,
  readCmdline,
  readEnviron,
  startOrigin,
  targetFor,
} from './test-helpers'

describe('cloudflareNamedTunnel against the cloudflared double', () => {
  it('passes the token through TUNNEL_TOKEN only: never in any argv, never in the logs', async () => {
    await using origin = await startOrigin()
    const token = fakeToken()
    const logger = recordingLogger()
    const calls = logger.records
    const backend = cloudflareNamedTunnel({
      token,
      hostname: 'app.example.com',
      cloudflaredPath: DOUBLE_PATH,
      logger,
      env: {
        ...process.env,
        CLOUDFLARED_DOUBLE_ORIGIN: origin.url,
        CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50',
      },
    })
    expect(backend.name).toBe('cloudflare-named')
    await using tunnel = await backend.open(targetFor(origin))
    expect(tunnel.url).toBe('https://app.example.com')

    const info = await getJson<{ tokenSource: string; tunnelId: string; ppid: number }>(
      `${tunnel.metricsUrl}/taskapp-double/info`,
    )
    // The double decoded the token, and it came from the environment.
    expect(info).toMatchObject({ tokenSource: 'env', tunnelId: '6ff42ae2-765d-4adf-8112-31c55c1551ef' })
    for (const pid of [tunnel.pid, info.ppid]) {
      const argv = (await readCmdline(pid)).join(' ')
      expect(argv).not.toContain(token)
      expect(argv).not.toContain(token.slice(0, 24))
    }
    // argv[0] is the interpreter named in the double's shebang.
    expect((await readCmdline(tunnel.pid)).slice(1)).toEqual([
      DOUBLE_PATH,
      'tunnel',
      '--no-autoupdate',
      '--metrics',
      '127.0.0.1:0',
      'run',
    ])
    expect(tunnel.recentOutput()).toContainEqual(
      expect.stringMatching(
        new RegExp(`INF Starting metrics server on ${new URL(tunnel.metricsUrl).host}/metrics$`),
      ),
    )
    expect(await readEnviron(tunnel.pid)).toContain(`TUNNEL_TOKEN=${token}`)
    expect(calls.length).toBeGreaterThan(5)
    for (const c of calls) expect(JSON.stringify(c)).not.toContain(token)
    expect(calls.some((c) => c.msg?.includes('Environmental variables map[TUNNEL_TOKEN:*****]'))).toBe(true)

    // Requests travel through the double to the origin.
    const forward = await getJson<{ url: string }>(`${tunnel.metricsUrl}/taskapp-double/forward`)
    const res = await fetch(`${forward.url}/health`)
    expect(await res.json()).toEqual({ ok: true })
  })

  it('redacts the token from lines cloudflared prints and from error messages', async () => {
    // An invalid token makes the double exit 255 with "Provided Tunnel token is not valid.", like cloudflared.
    const token = 'not-base64-json-but-long-enough-to-redact'
    const logger = recordingLogger()
    const calls = logger.records
    const err = await cloudflareNamedTunnel({
      token,
      hostname: 'app.example.com',
      cloudflaredPath: DOUBLE_PATH,
      logger,
    })
      .open({ localUrl: 'http://127.0.0.1:9', port: 9, host: '127.0.0.1' })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CloudflareTunnelError)
    const e = err as CloudflareTunnelError
    expect(e.code).toBe('TASKAPP_ERR_TUNNEL_TOKEN_INVALID')
    expect(e.exitCode).toBe(255)
    expect(e.lines).toContain('Provided Tunnel token is not valid.')
    expect(JSON.stringify({ m: e.message, l: e.lines, calls })).not.toContain(token)
  })

  it('redactor hides a secret the binary echoes', async () => {
    const { redactor } = await import('./log-parser')
    const token = fakeToken()
    const redact = redactor([token])
    expect(redact(`Settings: map[token:${token}]`)).toBe(
      `Settings: map[token:${token.slice(0, 4)}…[redacted]]`,
    )
    expect(redactor([undefined, ''])('unchanged')).toBe('unchanged')
    expect(redactor(['short'])('a short one')).toBe('a [redacted] one')
  })

  it('accepts a hostname given as a URL and normalizes it', async () => {
    await using origin = await startOrigin()
    await using tunnel = await cloudflareNamedTunnel({
      token: fakeToken(),
      hostname: 'https://App.Example.com/',
      cloudflaredPath: DOUBLE_PATH,
      env: { ...process.env, CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50' },
    }).open(targetFor(origin))
    expect(tunnel.url).toBe('https://app.example.com')
  })
})
