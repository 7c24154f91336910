/**
 * verifyContainerToken against real tokens signed with generated Ed25519 keys (signContainerToken,
 * or paseto directly for claims and footers the signer never writes).
 */
import type { KeyObject } from 'node:crypto'
import { PublicProtocol } from 'paseto'
import type { Claims, JsonValue } from 'paseto'
import { SignFactory } from 'paseto/v4/public'
import { describe, expect, test } from 'vitest'
import {
  generateContainerKeyPair,
  isTaskServerError,
  parseTrustedContainerKeys,
  signContainerToken,
  verifyContainerToken,
} from '../index'
import type { ContainerPublicKey, ContainerTokenScope, VerifyContainerTokenOptions } from '../index'
import { pasetoSecretKey } from './keys'

const NOW = Date.parse('2030-01-01T00:00:00Z')
const MIN = 60_000
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')

const a = generateContainerKeyPair({ kid: 'k1' })
const b = generateContainerKeyPair({ kid: 'k2' })
const untrusted = generateContainerKeyPair({ kid: 'k1' })
/** Both trusted keys with kids. */
const withKids = parseTrustedContainerKeys(`${a.trusted},${b.trusted}`)
/** The same keys without kids. */
const withoutKids = parseTrustedContainerKeys(`${a.publicKey},${b.publicKey}`)
/** a with its kid, b without. */
const mixed = parseTrustedContainerKeys(`${a.trusted},${b.publicKey}`)

const signer = new PublicProtocol(SignFactory)

/** Signs any claims and footer with paseto directly. */
async function rawSign(privateKey: KeyObject, claims: Claims, footer?: string): Promise<string> {
  return signer.Sign(await pasetoSecretKey(privateKey), claims, {
    addIssuedAt: false,
    nonExpiring: claims.exp === undefined,
    ...(footer === undefined ? {} : { footer: Buffer.from(footer, 'utf8') }),
  })
}

/** Claims as signContainerToken writes them; an override of `undefined` removes a claim. */
function baseClaims(overrides: Record<string, JsonValue | undefined> = {}): Claims {
  const claims: Record<string, JsonValue | undefined> = {
    iss: 'synth-backend',
    aud: 'synth-container',
    iat: iso(NOW),
    nbf: iso(NOW),
    exp: iso(NOW + 5 * MIN),
    jti: 'c0ffee00-0000-4000-8000-000000000000',
    scopes: ['rollout'],
    ...overrides,
  }
  return Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined)) as Claims
}

function sign(overrides: Partial<Parameters<typeof signContainerToken>[0]> = {}) {
  return signContainerToken({
    privateKey: a.privateKey,
    kid: 'k1',
    scopes: ['rollout'],
    ttlMs: 5 * MIN,
    now: NOW,
    ...overrides,
  })
}

/** Flips one bit of the decoded payload (claims or signature) at `index` (negative: from the end). */
function flipPayloadBit(token: string, index: number): string {
  const [version, purpose, payload, ...footer] = token.split('.')
  const bytes = Buffer.from(payload!, 'base64url')
  const at = index < 0 ? bytes.length + index : index
  bytes[at] = bytes[at]! ^ 0x01
  return [version, purpose, bytes.toString('base64url'), ...footer].join('.')
}

function verify(header: string | undefined, options: Partial<VerifyContainerTokenOptions> = {}) {
  return verifyContainerToken(header, { keys: withKids, scope: 'rollout', now: NOW, ...options })
}

interface Case {
  name: string
  token: () => Promise<string>
  scope?: ContainerTokenScope | null
  keys?: readonly ContainerPublicKey[]
  options?: Partial<VerifyContainerTokenOptions>
  /** `kid` of the key expected to verify, or the message expected on refusal. */
  expected: { kid: string | undefined } | RegExp
}

const cases: Case[] = [
  // scopes
  { name: 'rollout token, rollout route', token: () => sign(), expected: { kid: 'k1' } },
  {
    name: 'task_info token, task_info route',
    token: () => sign({ scopes: ['task_info'] }),
    scope: 'task_info',
    expected: { kid: 'k1' },
  },
  {
    name: 'both scopes, task_info route',
    token: () => sign({ scopes: ['rollout', 'task_info'] }),
    scope: 'task_info',
    expected: { kid: 'k1' },
  },
  {
    name: 'wrong scope',
    token: () => sign({ scopes: ['rollout'] }),
    scope: 'task_info',
    expected: /does not grant the "task_info" scope \(it grants "rollout"\)/,
  },
  {
    name: '`scope` as a space-separated string',
    token: () => rawSign(a.privateKey, baseClaims({ scopes: undefined, scope: 'task_info  rollout' })),
    scope: 'rollout',
    expected: { kid: 'k1' },
  },
  {
    name: '`scope` string without the needed scope',
    token: () => rawSign(a.privateKey, baseClaims({ scopes: undefined, scope: 'task_info' })),
    expected: /does not grant the "rollout" scope \(it grants "task_info"\)/,
  },
  {
    name: 'no scopes at all',
    token: () => rawSign(a.privateKey, baseClaims({ scopes: undefined })),
    expected: /does not grant the "rollout" scope \(it grants none\)/,
  },
  {
    name: '`scopes` that is not an array',
    token: () => rawSign(a.privateKey, baseClaims({ scopes: 'rollout' })),
    expected: /does not grant the "rollout" scope/,
  },
  {
    name: 'scope null (a route that needs none): any valid token, even one without scopes',
    token: () => rawSign(a.privateKey, baseClaims({ scopes: undefined })),
    scope: null,
    expected: { kid: 'k1' },
  },
  {
    name: 'scope null still checks the signature and time claims',
    token: () => sign({ now: NOW - 10 * MIN }),
    scope: null,
    expected: /Token has expired/,
  },
  // time
  { name: 'expired', token: () => sign({ now: NOW - 10 * MIN }), expected: /Token has expired/ },
  {
    name: 'expired 20 s ago, inside the 30 s tolerance',
    token: () => rawSign(a.privateKey, baseClaims({ iat: iso(NOW - MIN), exp: iso(NOW - 20_000) })),
    expected: { kid: 'k1' },
  },
  {
    name: 'expired 20 s ago, tolerance 10 s',
    token: () => rawSign(a.privateKey, baseClaims({ iat: iso(NOW - MIN), exp: iso(NOW - 20_000) })),
    options: { clockToleranceMs: 10_000 },
    expected: /Token has expired/,
  },
  { name: 'not yet valid (nbf)', token: () => sign({ now: NOW + 5 * MIN }), expected: /not active yet/ },
  {
    name: 'issued in the future beyond the tolerance',
    token: () => rawSign(a.privateKey, baseClaims({ nbf: iso(NOW - MIN), iat: iso(NOW + 2 * MIN) })),
    expected: /issued in the future/,
  },
  {
    name: 'issued 20 s in the future, inside the tolerance',
    token: () => rawSign(a.privateKey, baseClaims({ nbf: undefined, iat: iso(NOW + 20_000) })),
    expected: { kid: 'k1' },
  },
  {
    name: 'no exp',
    token: () => rawSign(a.privateKey, baseClaims({ exp: undefined })),
    expected: /Missing required "exp" claim/,
  },
  // audience and issuer
  {
    name: 'wrong audience',
    token: () => sign({ audience: 'other-service' }),
    expected: /"aud" claim is not "synth-container"/,
  },
  {
    name: 'missing audience',
    token: () => rawSign(a.privateKey, baseClaims({ aud: undefined })),
    expected: /"aud" claim is not "synth-container"/,
  },
  {
    name: 'wrong issuer',
    token: () => sign({ issuer: 'someone' }),
    expected: /"iss" claim is not "synth-backend"/,
  },
  {
    name: 'configured issuer and audience',
    token: () => sign({ issuer: 'my-backend', audience: 'my-app' }),
    options: { issuer: 'my-backend', audience: 'my-app' },
    expected: { kid: 'k1' },
  },
  // integrity
  {
    name: 'tampered payload',
    token: async () => flipPayloadBit(await sign(), 5),
    expected: /signature does not match the trusted key\(s\) with kid "k1"/,
  },
  {
    name: 'tampered signature',
    token: async () => flipPayloadBit(await sign(), -1),
    expected: /signature does not match the trusted key\(s\) with kid "k1"/,
  },
  {
    name: 'tampered footer (kid k1 → k2, both trusted)',
    token: async () =>
      (await sign()).replace(/\.[^.]+$/, `.${Buffer.from('{"kid":"k2"}').toString('base64url')}`),
    expected: /signature does not match the trusted key\(s\) with kid "k2"/,
  },
  // kids and key lists
  {
    name: 'unknown kid',
    token: () => sign({ kid: 'k9' }),
    expected: /no trusted key has the footer's kid "k9"/,
  },
  {
    name: 'untrusted key with a trusted kid',
    token: () => sign({ privateKey: untrusted.privateKey, kid: 'k1' }),
    expected: /signature does not match the trusted key\(s\) with kid "k1"/,
  },
  {
    name: 'untrusted key, no kid',
    token: () => sign({ privateKey: untrusted.privateKey, kid: undefined }),
    expected: /signature matches none of the 2 trusted key\(s\)/,
  },
  {
    name: 'no kid: every key is tried (keys with kids)',
    token: () => sign({ privateKey: b.privateKey, kid: undefined }),
    expected: { kid: 'k2' },
  },
  {
    name: 'no kid, keys without kids',
    token: () => sign({ privateKey: b.privateKey, kid: undefined }),
    keys: withoutKids,
    expected: { kid: undefined },
  },
  {
    name: 'a kid, keys without kids: refused',
    token: () => sign(),
    keys: withoutKids,
    expected: /no trusted key has the footer's kid "k1"/,
  },
  { name: 'mixed list: kid k1', token: () => sign(), keys: mixed, expected: { kid: 'k1' } },
  {
    name: 'mixed list: no kid, key without kid',
    token: () => sign({ privateKey: b.privateKey, kid: undefined }),
    keys: mixed,
    expected: { kid: undefined },
  },
  {
    name: 'kid matching two keys: the right one verifies',
    token: () => sign({ privateKey: untrusted.privateKey }),
    keys: parseTrustedContainerKeys(`${a.trusted},${untrusted.trusted}`),
    expected: { kid: 'k1' },
  },
  // footers
  {
    name: 'footer that is not JSON',
    token: () => rawSign(a.privateKey, baseClaims(), 'k1'),
    expected: /footer is not JSON/,
  },
  {
    name: 'footer that is a JSON array',
    token: () => rawSign(a.privateKey, baseClaims(), '["k1"]'),
    expected: /footer is not a JSON object/,
  },
  {
    name: 'footer kid that is not a string',
    token: () => rawSign(a.privateKey, baseClaims(), '{"kid":1}'),
    expected: /footer "kid" is not a non-empty string/,
  },
  {
    name: 'footer JSON without a kid: every key is tried',
    token: () => rawSign(b.privateKey, baseClaims(), '{"wpk":"x"}'),
    expected: { kid: 'k2' },
  },
  {
    name: 'unknown kid with odd characters is not echoed',
    token: () => rawSign(a.privateKey, baseClaims(), JSON.stringify({ kid: '<script>\n' })),
    expected: /footer's kid \(9 characters, not shown\)/,
  },
]

describe('verifyContainerToken: real tokens', () => {
  test.each(cases)(
    '$name',
    async ({ token: make, scope = 'rollout', keys = withKids, options, expected }) => {
      const token = await make()
      const result = await verify(`Bearer ${token}`, { keys, scope, ...options })
      if (expected instanceof RegExp) {
        expect(result).toMatchObject({ ok: false, reason: 'auth_invalid' })
        if (result.ok) return
        expect(result.message).toMatch(expected)
        expect(result.message).toMatch(/^Container token refused: /)
        // Never the token, nor any part of it.
        for (const part of token.split('.').slice(2)) expect(result.message).not.toContain(part.slice(0, 16))
      } else {
        expect(result.ok, result.ok ? '' : result.message).toBe(true)
        if (!result.ok) return
        expect(result.kid).toBe(expected.kid)
        if (scope !== null) expect(result.scopes).toContain(scope)
      }
    },
  )

  test('a valid token gives its claims and scopes', async () => {
    const result = await verify(`Bearer ${await sign({ scopes: ['rollout', 'task_info'] })}`)
    expect(result).toEqual({
      ok: true,
      kid: 'k1',
      scopes: ['rollout', 'task_info'],
      claims: {
        iss: 'synth-backend',
        aud: 'synth-container',
        iat: '2030-01-01T00:00:00Z',
        nbf: '2030-01-01T00:00:00Z',
        exp: '2030-01-01T00:05:00Z',
        jti: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
        scopes: ['rollout', 'task_info'],
      },
    })
  })

  test('`now` defaults to the clock at call time', async () => {
    const token = await signContainerToken({
      privateKey: a.privateKey,
      kid: 'k1',
      scopes: ['rollout'],
      ttlMs: MIN,
    })
    const result = await verifyContainerToken(`Bearer ${token}`, { keys: withKids, scope: 'rollout' })
    expect(result.ok).toBe(true)
  })
})

describe('verifyContainerToken: the header', () => {
  test.each([
    ['Bearer <token>', (t: string) => `Bearer ${t}`],
    ['bearer <token>', (t: string) => `bearer ${t}`],
    ['BEARER <token>', (t: string) => `BEARER ${t}`],
    ['Bearer, tab and spaces', (t: string) => `  Bearer\t ${t}  `],
    ['the token alone', (t: string) => t],
  ])('%s is accepted', async (_name, header) => {
    const result = await verify(header(await sign()))
    expect(result.ok, result.ok ? '' : result.message).toBe(true)
  })

  test.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['a blank header', '   '],
  ])('%s → auth_missing', async (_name, header) => {
    expect(await verify(header)).toEqual({
      ok: false,
      reason: 'auth_missing',
      message: 'Container token missing: send X-Synth-Container-Authorization: Bearer <token>.',
    })
  })

  test.each<[string, string, RegExp]>([
    ['"Bearer" alone', 'Bearer ', /has "Bearer" but no token/],
    ['not a PASETO', 'Bearer some-api-key', /not a PASETO v4\.public token\.$/],
    ['another PASETO kind', 'Bearer v2.local.abcdef', /not a PASETO v4\.public token \(got v2\.local\)/],
    ['a v4.local token', 'v4.local.abcdef', /\(got v4\.local\)/],
    ['bad base64url', 'Bearer v4.public.!!!!', /not a well-formed PASETO/],
    ['truncated payload', 'Bearer v4.public.AAAA', /not a well-formed PASETO \(Truncated/],
    ['too many segments', 'Bearer v4.public.AAAA.BBBB.CCCC', /not a well-formed PASETO/],
    ['an over-long token', `Bearer v4.public.${'A'.repeat(9000)}`, /longer than 8192 characters/],
  ])('%s → auth_invalid', async (_name, header, message) => {
    const result = await verify(header)
    expect(result).toMatchObject({ ok: false, reason: 'auth_invalid', message })
    if (!result.ok) expect(result.message).not.toContain('abcdef')
  })
})

describe('verifyContainerToken: bad options reject (never bad tokens)', () => {
  test.each<[string, Partial<VerifyContainerTokenOptions>, string, RegExp]>([
    ['no keys', { keys: [] }, 'TASKAPP_ERR_INVALID_CONTAINER_KEY', /non-empty array/],
    ['unparsed keys', { keys: [a.trusted] as never }, 'TASKAPP_ERR_INVALID_CONTAINER_KEY', /keys\[0\]/],
    [
      'a private key',
      { keys: [{ key: a.privateKey }] },
      'TASKAPP_ERR_INVALID_CONTAINER_KEY',
      /keys\[0\]: expected an Ed25519 public KeyObject/,
    ],
    [
      'unknown scope',
      { scope: 'admin' as never },
      'TASKAPP_ERR_INVALID_CONFIG',
      /"scope" must be one of rollout, task_info/,
    ],
    ['empty issuer', { issuer: '' }, 'TASKAPP_ERR_INVALID_CONFIG', /"issuer"/],
    ['negative tolerance', { clockToleranceMs: -1 }, 'TASKAPP_ERR_INVALID_CONFIG', /"clockToleranceMs"/],
    ['invalid now', { now: Number.NaN }, 'TASKAPP_ERR_INVALID_CONFIG', /"now"/],
  ])('%s', async (_name, options, code, message) => {
    const err: unknown = await verify('Bearer x', options).catch((e: unknown) => e)
    expect(isTaskServerError(err, code as 'TASKAPP_ERR_INVALID_CONFIG')).toBe(true)
    expect((err as Error).message).toMatch(message)
  })
})
