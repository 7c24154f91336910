import { describe, expect, it } from 'vitest'
import { parseCloudflaredLine } from './index'
import { parseMetricsAddress } from './log-parser'

// Lines as cloudflared prints them (see the header of fixtures/cloudflared-double.cjs for sources).
const T = '2026-08-20T10:00:00Z'

describe('parseCloudflaredLine', () => {
  it.each([
    [
      `${T} INF |  https://buffalo-marco-cardiff-motel.trycloudflare.com                                     |`,
      'https://buffalo-marco-cardiff-motel.trycloudflare.com',
    ],
    [`${T} INF |  https://a1-b2.TryCloudflare.com  |`, 'https://a1-b2.trycloudflare.com'],
    [
      '{"level":"info","time":"x","message":"|  https://lamp-orbit.trycloudflare.com   |"}',
      'https://lamp-orbit.trycloudflare.com',
    ],
    [`${T} INF https://bare-url.trycloudflare.com`, 'https://bare-url.trycloudflare.com'],
  ])('finds the URL in %j', (line, url) => {
    expect(parseCloudflaredLine(line).url).toBe(url)
  })

  it.each([
    // The API host in a failure line, or even in a box, is never the tunnel URL.
    'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: lookup api.trycloudflare.com on 127.0.0.11:53: no such host',
    `${T} INF |  https://api.trycloudflare.com  |`,
    `${T} INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |`,
    `${T} INF |  CONNECTIVITY PRE-CHECKS https://example.com                                                 |`,
    `${T} INF Settings: map[ha-connections:1 protocol:quic url:http://127.0.0.1:3000]`,
    `${T} ERR |  https://error-level.trycloudflare.com  |`,
    `${T} INF Visit https://not-a-box-row.trycloudflare.com now`,
  ])('finds no URL in %j', (line) => {
    expect(parseCloudflaredLine(line).url).toBeUndefined()
  })

  it.each([
    `${T} INF Registered tunnel connection connIndex=0 connection=8d1c0d9a-8f0c-4a3e-9f0e-3c5f0f7f9c11 event=0 ip=198.41.200.63 location=bru01 protocol=quic`,
    `${T} INF Connection 8d1c0d9a-8f0c-4a3e-9f0e-3c5f0f7f9c11 registered with protocol: quic connIndex=0 ip=198.41.192.107 location=CDG`,
    `${T} INF Connection 8d1c0d9a-8f0c-4a3e-9f0e-3c5f0f7f9c11 registered connIndex=0 location=WAW`,
    '{"level":"info","connIndex":0,"message":"Registered tunnel connection"}',
  ])('sees a registration in %j', (line) => {
    expect(parseCloudflaredLine(line).registered).toBe(true)
  })

  it.each([
    `${T} INF Unregistered tunnel connection connIndex=0 event=0 ip=198.41.200.23`,
    `${T} ERR Failed to dial a quic connection error="failed to dial to edge with quic: timeout: no recent network activity" connIndex=0 event=0 ip=198.41.200.33`,
    'Registered tunnel connection (a plain line is not a log record)',
  ])('sees no registration in %j', (line) => {
    expect(parseCloudflaredLine(line).registered).toBe(false)
  })

  it('classifies levels, the 429 rate limit and an invalid token', () => {
    const rate = parseCloudflaredLine(
      `${T} ERR Error unmarshaling QuickTunnel response: error code: 1015 error="invalid character 'e' looking for beginning of value" status_code="429 Too Many Requests"`,
    )
    expect(rate).toMatchObject({ level: 'ERR', rateLimited: true })
    expect(
      parseCloudflaredLine(
        "failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value",
      ).rateLimited,
    ).toBe(false)
    expect(
      parseCloudflaredLine(`${T} ERR error="Unable to reach the origin service" cfRay=1 status=429`)
        .rateLimited,
    ).toBe(false)
    expect(parseCloudflaredLine('Provided Tunnel token is not valid.')).toMatchObject({
      level: undefined,
      tokenInvalid: true,
    })
    expect(parseCloudflaredLine(`${T} WRN Serve tunnel error error="timeout"`).level).toBe('WRN')
    expect(parseCloudflaredLine('{"level":"error","message":"x"}').level).toBe('ERR')
  })
})

describe('parseMetricsAddress (internal)', () => {
  it.each([
    [`${T} INF Starting metrics server on 127.0.0.1:43121/metrics`, '127.0.0.1:43121'],
    [
      '{"level":"info","time":"x","message":"Starting metrics server on 127.0.0.1:20241/metrics"}',
      '127.0.0.1:20241',
    ],
    [`${T} INF Starting metrics server on [::1]:20241/metrics`, '[::1]:20241'],
    [`${T} INF Starting metrics server on 0.0.0.0:20242/metrics`, '127.0.0.1:20242'],
    [`${T} INF Starting metrics server on [::]:20243/metrics`, '[::1]:20243'],
  ])('reads the bound address from %j', (line, address) => {
    expect(parseMetricsAddress(line)).toBe(address)
  })

  it.each([
    `${T} INF Starting metrics server on 127.0.0.1:0/metrics`,
    `${T} ERR Starting metrics server on 127.0.0.1:20241/metrics`,
    `${T} INF Settings: map[metrics:127.0.0.1:0 no-autoupdate:true]`,
    'failed to start metrics server: listen tcp 127.0.0.1:20241: bind: address already in use',
  ])('finds no address in %j', (line) => {
    expect(parseMetricsAddress(line)).toBeUndefined()
  })
})
