import { describe, expect, it } from 'vitest'
import {
  ENVIRONMENT_API_KEY_ENV_NAMES,
  environmentApiKey,
  environmentApiKeys,
  relayApiKeyFromEnv,
} from './index'

describe('environmentApiKey / environmentApiKeys', () => {
  it('takes the first set of ENVIRONMENT_API_KEY, DEV_ENVIRONMENT_API_KEY, dev_environment_api_key', () => {
    expect(ENVIRONMENT_API_KEY_ENV_NAMES).toEqual([
      'ENVIRONMENT_API_KEY',
      'DEV_ENVIRONMENT_API_KEY',
      'dev_environment_api_key',
    ])
    const all = {
      ENVIRONMENT_API_KEY: 'sk-a',
      DEV_ENVIRONMENT_API_KEY: 'sk-b',
      dev_environment_api_key: 'sk-c',
    }
    expect(environmentApiKey(all)).toBe('sk-a')
    expect(environmentApiKey({ ...all, ENVIRONMENT_API_KEY: '  ' })).toBe('sk-b')
    expect(environmentApiKey({ dev_environment_api_key: ' sk-c ' })).toBe('sk-c')
    expect(environmentApiKey({})).toBeUndefined()
  })

  it('adds the aliases, trimmed, without blanks or repeats; only the first of the three names counts', () => {
    const env = {
      ENVIRONMENT_API_KEY: 'sk-a',
      DEV_ENVIRONMENT_API_KEY: 'sk-b',
      ENVIRONMENT_API_KEY_ALIASES: ' sk-x ,, sk-a,sk-y ',
    }
    expect(environmentApiKeys(env)).toEqual(['sk-a', 'sk-x', 'sk-y'])
    expect(environmentApiKeys({ ENVIRONMENT_API_KEY_ALIASES: 'sk-x' })).toEqual(['sk-x'])
    expect(environmentApiKeys({})).toEqual([])
  })

  it('reads process.env by default', () => {
    const before = process.env.ENVIRONMENT_API_KEY
    process.env.ENVIRONMENT_API_KEY = 'sk-from-process'
    try {
      expect(environmentApiKey()).toBe('sk-from-process')
      expect(environmentApiKeys()).toContain('sk-from-process')
    } finally {
      if (before === undefined) delete process.env.ENVIRONMENT_API_KEY
      else process.env.ENVIRONMENT_API_KEY = before
    }
  })
})

describe('relayApiKeyFromEnv', () => {
  const env = { TASKAPP_RELAY_API_KEY: 'rk-self-hosted', SYNTH_API_KEY: 'sk-synth' }

  it('a self-hosted relay: TASKAPP_RELAY_API_KEY, then SYNTH_API_KEY', () => {
    expect(relayApiKeyFromEnv(env, { selfHosted: true })).toEqual({
      name: 'TASKAPP_RELAY_API_KEY',
      value: 'rk-self-hosted',
    })
    expect(relayApiKeyFromEnv({ ...env, TASKAPP_RELAY_API_KEY: ' ' }, { selfHosted: true })).toEqual({
      name: 'SYNTH_API_KEY',
      value: 'sk-synth',
    })
  })

  it("Synth's hosted relay: only SYNTH_API_KEY, never the self-hosted relay's key", () => {
    expect(relayApiKeyFromEnv(env, { selfHosted: false })).toEqual({
      name: 'SYNTH_API_KEY',
      value: 'sk-synth',
    })
    expect(
      relayApiKeyFromEnv({ TASKAPP_RELAY_API_KEY: 'rk-self-hosted' }, { selfHosted: false }),
    ).toBeUndefined()
  })
})
