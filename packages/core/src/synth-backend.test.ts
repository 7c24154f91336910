import { describe, expect, it } from 'vitest'
import {
  CoreError,
  CoreErrorCode,
  SYNTH_BACKEND_ENV_NAMES,
  SYNTH_DEV_BACKEND_URL,
  SYNTH_LOCAL_BACKEND_URL,
  SYNTH_PROD_BACKEND_URL,
  TaskappError,
  resolveSynthBackendUrl,
} from './index'

type Env = Record<string, string | undefined>

/** The error `resolveSynthBackendUrl` throws for these options. */
function failure(options: Parameters<typeof resolveSynthBackendUrl>[0]): CoreError {
  try {
    resolveSynthBackendUrl(options)
  } catch (err) {
    return err as CoreError
  }
  throw new Error('expected resolveSynthBackendUrl to throw')
}

describe('resolveSynthBackendUrl', () => {
  it('defaults to Synth production', () => {
    expect(resolveSynthBackendUrl({ env: {} })).toEqual({ url: SYNTH_PROD_BACKEND_URL, source: 'default' })
    expect(SYNTH_PROD_BACKEND_URL).toBe('https://api.usesynth.ai')
    expect(SYNTH_DEV_BACKEND_URL).toBe('https://api-dev.usesynth.ai')
    expect(SYNTH_LOCAL_BACKEND_URL).toBe('http://localhost:8000')
    expect(SYNTH_BACKEND_ENV_NAMES).toEqual(['SYNTH_BACKEND_URL_OVERRIDE', 'SYNTH_BACKEND_URL'])
  })

  it.each([
    ['local', SYNTH_LOCAL_BACKEND_URL],
    ['localhost', SYNTH_LOCAL_BACKEND_URL],
    ['LOCAL', SYNTH_LOCAL_BACKEND_URL],
    ['dev', SYNTH_DEV_BACKEND_URL],
    ['development', SYNTH_DEV_BACKEND_URL],
    ['staging', SYNTH_DEV_BACKEND_URL],
    ['Dev', SYNTH_DEV_BACKEND_URL],
    ['prod', SYNTH_PROD_BACKEND_URL],
    ['production', SYNTH_PROD_BACKEND_URL],
    [' PROD \n', SYNTH_PROD_BACKEND_URL],
  ])('SYNTH_BACKEND_URL_OVERRIDE=%j → %s', (value, url) => {
    expect(resolveSynthBackendUrl({ env: { SYNTH_BACKEND_URL_OVERRIDE: value } })).toEqual({
      url,
      source: 'SYNTH_BACKEND_URL_OVERRIDE',
    })
  })

  it.each([
    ['http://127.0.0.1:8787', 'http://127.0.0.1:8787'],
    ['http://127.0.0.1:8787/', 'http://127.0.0.1:8787'],
    ['http://127.0.0.1:8787/api', 'http://127.0.0.1:8787'],
    ['http://127.0.0.1:8787/api/', 'http://127.0.0.1:8787'],
    ['  https://relay.example.com//  ', 'https://relay.example.com'],
    ['https://relay.example.com/team/api', 'https://relay.example.com/team'],
    ['https://relay.example.com/apis', 'https://relay.example.com/apis'],
    ['HTTPS://Relay.Example.com', 'https://relay.example.com'],
  ])('URL %j → %s, from the option and either variable', (value, url) => {
    expect(resolveSynthBackendUrl({ backendUrl: value, env: {} })).toEqual({ url, source: 'option' })
    expect(resolveSynthBackendUrl({ env: { SYNTH_BACKEND_URL_OVERRIDE: value } })).toEqual({
      url,
      source: 'SYNTH_BACKEND_URL_OVERRIDE',
    })
    expect(resolveSynthBackendUrl({ env: { SYNTH_BACKEND_URL: value } })).toEqual({
      url,
      source: 'SYNTH_BACKEND_URL',
    })
  })

  it('precedence: option, then SYNTH_BACKEND_URL_OVERRIDE, then SYNTH_BACKEND_URL, then production', () => {
    const both: Env = { SYNTH_BACKEND_URL_OVERRIDE: 'dev', SYNTH_BACKEND_URL: 'http://127.0.0.1:7000' }
    expect(resolveSynthBackendUrl({ backendUrl: 'http://127.0.0.1:9000', env: both })).toEqual({
      url: 'http://127.0.0.1:9000',
      source: 'option',
    })
    expect(resolveSynthBackendUrl({ env: both })).toEqual({
      url: SYNTH_DEV_BACKEND_URL,
      source: 'SYNTH_BACKEND_URL_OVERRIDE',
    })
    expect(resolveSynthBackendUrl({ env: { SYNTH_BACKEND_URL: 'http://127.0.0.1:7000' } })).toEqual({
      url: 'http://127.0.0.1:7000',
      source: 'SYNTH_BACKEND_URL',
    })
    // With the option given, a bad variable is not even read.
    expect(
      resolveSynthBackendUrl({
        backendUrl: 'http://127.0.0.1:9000',
        env: { SYNTH_BACKEND_URL_OVERRIDE: 'nope' },
      }),
    ).toMatchObject({ source: 'option' })
  })

  it('blank variables count as unset', () => {
    expect(
      resolveSynthBackendUrl({ env: { SYNTH_BACKEND_URL_OVERRIDE: '', SYNTH_BACKEND_URL: '  ' } }),
    ).toEqual({ url: SYNTH_PROD_BACKEND_URL, source: 'default' })
    expect(
      resolveSynthBackendUrl({
        env: { SYNTH_BACKEND_URL_OVERRIDE: ' ', SYNTH_BACKEND_URL: 'http://127.0.0.1:1' },
      }),
    ).toEqual({ url: 'http://127.0.0.1:1', source: 'SYNTH_BACKEND_URL' })
  })

  it("ignores other tools' variables: they never change the result", () => {
    const foreign: Env = {
      BACKEND_BASE_URL: 'http://127.0.0.1:1111',
      NEXT_PUBLIC_API_URL: 'http://127.0.0.1:2222',
      TARGET_BACKEND_BASE_URL: 'http://127.0.0.1:3333',
      BACKEND_OVERRIDE: 'http://127.0.0.1:4444',
      SYNTH_BASE_URL: 'http://127.0.0.1:5555',
      BACKEND_URL: 'local',
    }
    expect(resolveSynthBackendUrl({ env: foreign })).toEqual({
      url: SYNTH_PROD_BACKEND_URL,
      source: 'default',
    })
    expect(resolveSynthBackendUrl({ env: { ...foreign, SYNTH_BACKEND_URL_OVERRIDE: 'dev' } })).toEqual({
      url: SYNTH_DEV_BACKEND_URL,
      source: 'SYNTH_BACKEND_URL_OVERRIDE',
    })
  })

  it('reads only SYNTH_BACKEND_URL_OVERRIDE and SYNTH_BACKEND_URL, and writes nothing', () => {
    const read = new Set<string | symbol>()
    const written: (string | symbol)[] = []
    const env = new Proxy<Env>(
      { BACKEND_BASE_URL: 'http://127.0.0.1:1111' },
      {
        get: (target, key) => (read.add(key), Reflect.get(target, key)),
        has: (target, key) => (read.add(key), Reflect.has(target, key)),
        ownKeys: (target) => (read.add('<keys>'), Reflect.ownKeys(target)),
        set: (target, key, value) => (written.push(key), Reflect.set(target, key, value)),
        defineProperty: (target, key, desc) => (written.push(key), Reflect.defineProperty(target, key, desc)),
        deleteProperty: (target, key) => (written.push(key), Reflect.deleteProperty(target, key)),
      },
    )
    expect(resolveSynthBackendUrl({ env })).toMatchObject({ source: 'default' })
    expect([...read].sort()).toEqual([...SYNTH_BACKEND_ENV_NAMES].sort())
    expect(written).toEqual([])
  })

  it('defaults to process.env and never writes it', () => {
    const before = { ...process.env }
    const result = resolveSynthBackendUrl()
    expect(result.source).toMatch(/^(SYNTH_BACKEND_URL_OVERRIDE|SYNTH_BACKEND_URL|default)$/)
    expect({ ...process.env }).toEqual(before)
  })

  it.each<[string, Parameters<typeof resolveSynthBackendUrl>[0], RegExp]>([
    [
      'a mistyped shorthand',
      { env: { SYNTH_BACKEND_URL_OVERRIDE: 'prodd' } },
      /^SYNTH_BACKEND_URL_OVERRIDE must be local, dev, prod or an http\(s\) URL; got "prodd"\.$/,
    ],
    [
      'another scheme in the override',
      { env: { SYNTH_BACKEND_URL_OVERRIDE: 'ftp://files.example.com/x' } },
      /^SYNTH_BACKEND_URL_OVERRIDE must be .*; got "ftp:\/\/files\.example\.com"\.$/,
    ],
    [
      'a shorthand in SYNTH_BACKEND_URL',
      { env: { SYNTH_BACKEND_URL: 'dev' } },
      /^SYNTH_BACKEND_URL must be an http\(s\) URL .*set SYNTH_BACKEND_URL_OVERRIDE\); got "dev"\.$/,
    ],
    [
      'no scheme in SYNTH_BACKEND_URL',
      { env: { SYNTH_BACKEND_URL: 'api.usesynth.ai' } },
      /^SYNTH_BACKEND_URL must be an http\(s\) URL/,
    ],
    ['a bad option', { backendUrl: 'ws://127.0.0.1:1', env: {} }, /^backendUrl must be an http\(s\) URL/],
    ['an empty option', { backendUrl: '', env: {} }, /^backendUrl must be an http\(s\) URL.*; got ""\.$/],
  ])('%s → TASKAPP_ERR_INVALID_SYNTH_BACKEND_URL naming what to set', (_name, options, message) => {
    const err = failure(options)
    expect(err).toBeInstanceOf(CoreError)
    expect(err).toBeInstanceOf(TaskappError)
    expect(err).toMatchObject({ name: 'CoreError', code: CoreErrorCode.InvalidSynthBackendUrl })
    expect(err.code).toBe('TASKAPP_ERR_INVALID_SYNTH_BACKEND_URL')
    expect(err.message).toMatch(message)
  })

  it('never echoes a value that may be a secret pasted into the wrong variable', () => {
    const key = 'sk_live_0123456789abcdefghij'
    for (const env of [
      { SYNTH_BACKEND_URL_OVERRIDE: key },
      { SYNTH_BACKEND_URL: key },
      { SYNTH_BACKEND_URL: `ftp://user:${key}@files.example.com/?token=${key}` },
    ]) {
      const err = failure({ env })
      expect(err.message).not.toContain('0123456789')
      expect(err.message).toContain(Object.keys(env)[0] as string)
    }
    expect(failure({ env: { SYNTH_BACKEND_URL: key } }).message).toContain('"sk_l…" (28 characters)')
  })
})
