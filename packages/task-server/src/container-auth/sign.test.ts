import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { InspectFooter } from 'paseto'
import { describe, expect, test } from 'vitest'
import {
  generateContainerKeyPair,
  isTaskServerError,
  parseTrustedContainerKeys,
  signContainerToken,
  verifyContainerToken,
} from '../index'
import type { SignContainerTokenOptions } from '../index'

const NOW = Date.parse('2030-01-01T00:00:00.750Z')

function claimsOf(token: string): Record<string, unknown> {
  const payload = Buffer.from(token.split('.')[2]!, 'base64url')
  return JSON.parse(payload.subarray(0, -64).toString('utf8')) as Record<string, unknown>
}

describe('generateContainerKeyPair', () => {
  test('gives every form of the pair, consistent with each other', () => {
    const pair = generateContainerKeyPair({ kid: 'k1' })
    expect(pair.kid).toBe('k1')
    expect(pair.privateKey.type).toBe('private')
    expect(pair.privateKey.asymmetricKeyType).toBe('ed25519')
    expect(Buffer.from(pair.privateKeySeed, 'base64')).toHaveLength(32)
    expect(Buffer.from(pair.publicKey, 'base64')).toHaveLength(32)
    expect(pair.privateKeySeed).toMatch(/^[A-Za-z0-9+/]{43}=$/)
    expect(pair.trusted).toBe(`k1:${pair.publicKey}`)
    const derived = createPublicKey(pair.privateKey).export({ format: 'jwk' }).x
    expect(Buffer.from(derived!, 'base64url').toString('base64')).toBe(pair.publicKey)
  })

  test('without a kid, `trusted` is the bare key', () => {
    const pair = generateContainerKeyPair()
    expect(pair).not.toHaveProperty('kid')
    expect(pair.trusted).toBe(pair.publicKey)
  })

  test.each(['', 'a:b', 'a,b', 'a b', 'x'.repeat(129)])('kid %j is refused', (kid) => {
    expect(() => generateContainerKeyPair({ kid })).toThrow(
      expect.objectContaining({ code: 'TASKAPP_ERR_INVALID_CONTAINER_KEY' }),
    )
  })
})

describe('signContainerToken', () => {
  const pair = generateContainerKeyPair({ kid: 'k1' })
  const keys = parseTrustedContainerKeys(pair.trusted)
  const seed = Buffer.from(pair.privateKeySeed, 'base64')

  test('writes the claims synth-ai checks, in whole seconds', async () => {
    const token = await signContainerToken({
      privateKey: pair.privateKey,
      scopes: ['rollout', 'task_info'],
      ttlMs: 300_000,
      now: NOW,
    })
    expect(token).toMatch(/^v4\.public\.[A-Za-z0-9_-]+$/)
    expect(claimsOf(token)).toEqual({
      iss: 'synth-backend',
      aud: 'synth-container',
      iat: '2030-01-01T00:00:00Z',
      nbf: '2030-01-01T00:00:00Z',
      exp: '2030-01-01T00:05:00Z',
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      scopes: ['rollout', 'task_info'],
    })
  })

  test('a kid goes to the footer as {"kid": ...}; jti differs per token', async () => {
    const options = { privateKey: pair.privateKey, kid: 'k1', scopes: ['rollout'], ttlMs: 1000, now: NOW }
    const [one, two] = await Promise.all([signContainerToken(options), signContainerToken(options)])
    expect(Buffer.from(InspectFooter(one)).toString('utf8')).toBe('{"kid":"k1"}')
    expect(claimsOf(one).jti).not.toBe(claimsOf(two).jti)
  })

  test.each([
    ['a KeyObject', () => pair.privateKey],
    ['standard base64 of the seed', () => seed.toString('base64')],
    ['standard base64, unpadded', () => seed.toString('base64').replace(/=+$/, '')],
    ['URL-safe base64 of the seed', () => seed.toString('base64url')],
    [
      '64 bytes: seed and public key',
      () => Buffer.concat([seed, Buffer.from(pair.publicKey, 'base64')]).toString('base64'),
    ],
  ])('signs with %s; the token verifies', async (_name, privateKey) => {
    const token = await signContainerToken({
      privateKey: privateKey(),
      kid: 'k1',
      scopes: ['rollout'],
      ttlMs: 60_000,
    })
    const result = await verifyContainerToken(`Bearer ${token}`, { keys, scope: 'rollout' })
    expect(result.ok, result.ok ? '' : result.message).toBe(true)
  })

  const otherPublic = Buffer.from(generateContainerKeyPair().publicKey, 'base64')
  const { publicKey: publicKeyObject } = generateKeyPairSync('ed25519')
  test.each<[string, Partial<SignContainerTokenOptions>, string, RegExp]>([
    [
      'a 31-byte seed',
      { privateKey: seed.subarray(1).toString('base64') },
      'TASKAPP_ERR_INVALID_CONTAINER_KEY',
      /decodes to 31 bytes/,
    ],
    ['not base64', { privateKey: 'not base64!' }, 'TASKAPP_ERR_INVALID_CONTAINER_KEY', /not base64/],
    [
      '64 bytes whose public half is another key',
      { privateKey: Buffer.concat([seed, otherPublic]).toString('base64') },
      'TASKAPP_ERR_INVALID_CONTAINER_KEY',
      /last 32 bytes are not the public key/,
    ],
    [
      'a public KeyObject',
      { privateKey: publicKeyObject },
      'TASKAPP_ERR_INVALID_CONTAINER_KEY',
      /got a public ed25519 key/,
    ],
    ['a bad kid', { kid: 'k:1' }, 'TASKAPP_ERR_INVALID_CONTAINER_KEY', /"kid": the kid must be/],
    ['no scopes', { scopes: [] }, 'TASKAPP_ERR_INVALID_CONFIG', /"scopes"/],
    ['a scope with a space', { scopes: ['rollout task_info'] }, 'TASKAPP_ERR_INVALID_CONFIG', /"scopes"/],
    ['ttl under a second', { ttlMs: 999 }, 'TASKAPP_ERR_INVALID_CONFIG', /"ttlMs"/],
    ['ttl not finite', { ttlMs: Number.POSITIVE_INFINITY }, 'TASKAPP_ERR_INVALID_CONFIG', /"ttlMs"/],
    ['an empty audience', { audience: '' }, 'TASKAPP_ERR_INVALID_CONFIG', /"audience"/],
    ['an invalid now', { now: new Date('nope') }, 'TASKAPP_ERR_INVALID_CONFIG', /"now"/],
  ])('%s rejects', async (_name, patch, code, message) => {
    const err: unknown = await signContainerToken({
      privateKey: pair.privateKey,
      scopes: ['rollout'],
      ttlMs: 60_000,
      ...patch,
    }).catch((e: unknown) => e)
    expect(isTaskServerError(err, code as 'TASKAPP_ERR_INVALID_CONFIG')).toBe(true)
    expect((err as Error).message).toMatch(message)
  })

  test('a bad seed is shown by a short prefix only', async () => {
    const bad = seed.subarray(2).toString('base64')
    const err = (await signContainerToken({ privateKey: bad, scopes: ['rollout'], ttlMs: 60_000 }).catch(
      (e: unknown) => e,
    )) as Error
    expect(err.message).toContain(`${bad.slice(0, 6)}...`)
    expect(err.message).not.toContain(bad.slice(0, 7))
  })
})

describe('signal', () => {
  test('an aborted signal rejects sign and verify with its reason; a bad signal is an option error', async () => {
    const pair = generateContainerKeyPair({ kid: 'k1' })
    const reason = new Error('stop')
    const aborted = AbortSignal.abort(reason)
    const base = { privateKey: pair.privateKey, kid: 'k1', scopes: ['rollout'], ttlMs: 60_000 } as const
    await expect(signContainerToken({ ...base, signal: aborted })).rejects.toBe(reason)
    const token = await signContainerToken({ ...base, signal: new AbortController().signal })
    const keys = parseTrustedContainerKeys(pair.trusted)
    await expect(
      verifyContainerToken(`Bearer ${token}`, { keys, scope: 'rollout', signal: aborted }),
    ).rejects.toBe(reason)
    const live = await verifyContainerToken(`Bearer ${token}`, {
      keys,
      scope: 'rollout',
      signal: new AbortController().signal,
    })
    expect(live.ok).toBe(true)
    const bad = { signal: 'soon' as unknown as AbortSignal }
    await expect(signContainerToken({ ...base, ...bad })).rejects.toMatchObject({
      code: 'TASKAPP_ERR_INVALID_CONFIG',
    })
    await expect(
      verifyContainerToken(`Bearer ${token}`, { keys, scope: 'rollout', ...bad }),
    ).rejects.toMatchObject({
      code: 'TASKAPP_ERR_INVALID_CONFIG',
    })
  })
})
