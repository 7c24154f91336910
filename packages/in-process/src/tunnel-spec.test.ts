import { SYNTH_DEV_BACKEND_URL, SYNTH_PROD_BACKEND_URL } from '@taskapp/core'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { InProcessError } from './errors'
import { resolveTunnelOption } from './tunnel-spec'
import { clearRelayEnv } from './test-helpers'

beforeEach(clearRelayEnv)
afterEach(() => {
  vi.unstubAllEnvs()
})

/** The error `resolveTunnelOption` throws for `options`. */
function failure(options: Record<string, unknown>): InProcessError {
  try {
    resolveTunnelOption(options)
  } catch (err) {
    return err as InProcessError
  }
  throw new Error('expected resolveTunnelOption to throw')
}

describe("the 'synthtunnel' relay (the default mode)", () => {
  it('with SYNTH_API_KEY and no relay URL: Synth production (pure resolution; nothing is contacted)', () => {
    vi.stubEnv('SYNTH_API_KEY', 'synth-key')
    const expected = { mode: 'synthtunnel', relayUrl: SYNTH_PROD_BACKEND_URL, relayApiKey: 'synth-key' }
    expect(resolveTunnelOption({})).toEqual(expected)
    expect(resolveTunnelOption({ tunnel: { mode: 'synthtunnel' } })).toEqual(expected)
  })

  it('a relayApiKey option is enough to pick Synth', () => {
    expect(resolveTunnelOption({ tunnel: { mode: 'synthtunnel', relayApiKey: 'opt-key' } })).toEqual({
      mode: 'synthtunnel',
      relayUrl: SYNTH_PROD_BACKEND_URL,
      relayApiKey: 'opt-key',
    })
  })

  it('SYNTH_BACKEND_URL_OVERRIDE (shorthand or URL), then SYNTH_BACKEND_URL, choose the Synth backend', () => {
    vi.stubEnv('SYNTH_API_KEY', 'synth-key')
    vi.stubEnv('SYNTH_BACKEND_URL', 'http://127.0.0.1:7000/api')
    expect(resolveTunnelOption({})).toMatchObject({ relayUrl: 'http://127.0.0.1:7000' })
    vi.stubEnv('SYNTH_BACKEND_URL_OVERRIDE', 'dev')
    expect(resolveTunnelOption({})).toMatchObject({ relayUrl: SYNTH_DEV_BACKEND_URL })
    vi.stubEnv('SYNTH_BACKEND_URL_OVERRIDE', 'http://127.0.0.1:7100/')
    expect(resolveTunnelOption({})).toMatchObject({ relayUrl: 'http://127.0.0.1:7100' })
  })

  it('relayUrl, then TASKAPP_RELAY_URL, win over the Synth variables', () => {
    vi.stubEnv('SYNTH_API_KEY', 'synth-key')
    vi.stubEnv('SYNTH_BACKEND_URL_OVERRIDE', 'dev')
    vi.stubEnv('TASKAPP_RELAY_URL', 'http://127.0.0.1:8787/')
    expect(resolveTunnelOption({})).toEqual({
      mode: 'synthtunnel',
      relayUrl: 'http://127.0.0.1:8787',
      relayApiKey: 'synth-key',
    })
    expect(
      resolveTunnelOption({ tunnel: { mode: 'synthtunnel', relayUrl: 'http://127.0.0.1:9000' } }),
    ).toMatchObject({ relayUrl: 'http://127.0.0.1:9000' })
  })

  it('with a relay URL the key is relayApiKey, then TASKAPP_RELAY_API_KEY, then SYNTH_API_KEY (as the CLI reads it)', () => {
    vi.stubEnv('SYNTH_API_KEY', 'synth-key')
    vi.stubEnv('TASKAPP_RELAY_API_KEY', 'self-hosted-key')
    const selfHosted = { mode: 'synthtunnel', relayUrl: 'http://127.0.0.1:9000' }
    expect(resolveTunnelOption({ tunnel: selfHosted })).toMatchObject({ relayApiKey: 'self-hosted-key' })
    vi.stubEnv('TASKAPP_RELAY_URL', 'http://127.0.0.1:8787')
    expect(resolveTunnelOption({})).toMatchObject({ relayApiKey: 'self-hosted-key' })
    expect(resolveTunnelOption({ tunnel: { ...selfHosted, relayApiKey: 'opt-key' } })).toMatchObject({
      relayApiKey: 'opt-key',
    })
    vi.stubEnv('TASKAPP_RELAY_API_KEY', ' ')
    expect(resolveTunnelOption({})).toMatchObject({ relayApiKey: 'synth-key' })
  })

  it("Synth's hosted relay never gets TASKAPP_RELAY_API_KEY, only SYNTH_API_KEY", () => {
    vi.stubEnv('SYNTH_API_KEY', 'synth-key')
    vi.stubEnv('TASKAPP_RELAY_API_KEY', 'self-hosted-key')
    expect(resolveTunnelOption({})).toEqual({
      mode: 'synthtunnel',
      relayUrl: SYNTH_PROD_BACKEND_URL,
      relayApiKey: 'synth-key',
    })
  })

  it("other tools' variables are never read", () => {
    vi.stubEnv('SYNTH_API_KEY', 'synth-key')
    vi.stubEnv('BACKEND_BASE_URL', 'http://127.0.0.1:1111')
    vi.stubEnv('NEXT_PUBLIC_API_URL', 'http://127.0.0.1:2222')
    vi.stubEnv('TARGET_BACKEND_BASE_URL', 'http://127.0.0.1:3333')
    vi.stubEnv('BACKEND_OVERRIDE', 'http://127.0.0.1:4444')
    expect(resolveTunnelOption({})).toMatchObject({ relayUrl: SYNTH_PROD_BACKEND_URL })
  })

  it('no relay URL and no key → TASKAPP_ERR_INVALID_OPTIONS naming what to set, even with SYNTH_BACKEND_URL', () => {
    vi.stubEnv('SYNTH_BACKEND_URL', 'http://127.0.0.1:7000')
    // TASKAPP_RELAY_API_KEY is the CLI's name for a self-hosted relay's key: never sent to Synth.
    vi.stubEnv('TASKAPP_RELAY_API_KEY', 'self-hosted-key')
    for (const options of [{}, { tunnel: { mode: 'synthtunnel' } }]) {
      const err = failure(options)
      expect(err).toBeInstanceOf(InProcessError)
      expect(err.code).toBe('TASKAPP_ERR_INVALID_OPTIONS')
      expect(err.message).toContain('SYNTH_API_KEY')
      expect(err.message).toContain('TASKAPP_RELAY_URL')
      expect(err.message).toContain("tunnel: { mode: 'local' }")
    }
  })

  it('a bad SYNTH_BACKEND_URL_OVERRIDE → TASKAPP_ERR_INVALID_OPTIONS naming it, with core error as cause', () => {
    vi.stubEnv('SYNTH_API_KEY', 'synth-key')
    vi.stubEnv('SYNTH_BACKEND_URL_OVERRIDE', 'prodd')
    const err = failure({})
    expect(err).toBeInstanceOf(InProcessError)
    expect(err).toMatchObject({
      code: 'TASKAPP_ERR_INVALID_OPTIONS',
      message: 'SYNTH_BACKEND_URL_OVERRIDE must be local, dev, prod or an http(s) URL; got "prodd".',
      cause: { name: 'CoreError', code: 'TASKAPP_ERR_INVALID_SYNTH_BACKEND_URL' },
    })
    expect(err.message).not.toContain('synth-key')
  })

  it('never writes process.env', () => {
    vi.stubEnv('SYNTH_API_KEY', 'synth-key')
    const before = { ...process.env }
    resolveTunnelOption({})
    expect({ ...process.env }).toEqual(before)
  })
})
