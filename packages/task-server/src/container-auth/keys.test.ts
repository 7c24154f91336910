import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import { generateContainerKeyPair, isTaskServerError, parseTrustedContainerKeys } from '../index'
import { decodeBase64Key } from './keys'

function raw(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).x ?? '', 'base64url')
}

/** A public key whose base64 has `+` or `/`, so standard and URL-safe forms differ. */
function pairWithDistinctAlphabets() {
  for (;;) {
    const pair = generateContainerKeyPair({ kid: 'k1' })
    if (/[+/]/.test(pair.publicKey)) return pair
  }
}

function errorOf(fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a throw')
}

describe('parseTrustedContainerKeys: the SYNTH_CONTAINER_TRUSTED_PUBKEYS string', () => {
  const pair = pairWithDistinctAlphabets()
  const bytes = Buffer.from(pair.publicKey, 'base64')
  const standard = bytes.toString('base64')
  const urlSafe = bytes.toString('base64url')

  test.each([
    ['standard, padded', standard],
    ['standard, unpadded', standard.replace(/=+$/, '')],
    ['URL-safe, unpadded', urlSafe],
    ['URL-safe, padded', `${urlSafe}=`],
    ['spaces around', `  ${standard} `],
  ])('%s, with and without a kid', (_name, text) => {
    expect(standard).not.toBe(`${urlSafe}=`)
    const [withKid] = parseTrustedContainerKeys(`k1:${text}`)
    expect(withKid?.kid).toBe('k1')
    expect(raw(withKid!.key).equals(bytes)).toBe(true)
    const [bare] = parseTrustedContainerKeys(text)
    expect(bare).not.toHaveProperty('kid')
    expect(raw(bare!.key).equals(bytes)).toBe(true)
  })

  test('a comma list keeps order and kids; empty entries are skipped', () => {
    const other = generateContainerKeyPair()
    const keys = parseTrustedContainerKeys(` ${pair.trusted} ,, ${other.trusted},`)
    expect(keys.map((k) => k.kid)).toEqual(['k1', undefined])
    expect(raw(keys[1]!.key).toString('base64')).toBe(other.publicKey)
    expect(keys.every((k) => k.key.type === 'public' && k.key.asymmetricKeyType === 'ed25519')).toBe(true)
  })

  test('the trusted string of a generated pair round-trips', () => {
    const [key] = parseTrustedContainerKeys(pair.trusted)
    expect(key).toMatchObject({ kid: 'k1' })
    expect(raw(key!.key).toString('base64')).toBe(pair.publicKey)
  })
})

describe('parseTrustedContainerKeys: config arrays', () => {
  test('strings, KeyObjects and { kid?, key } objects mix', () => {
    const a = generateContainerKeyPair()
    const { publicKey: b } = generateKeyPairSync('ed25519')
    const { publicKey: c } = generateKeyPairSync('ed25519')
    const keys = parseTrustedContainerKeys([
      `ka:${a.publicKey}`,
      b,
      { kid: 'kc', key: c },
      { key: a.publicKey },
    ])
    expect(keys.map((k) => k.kid)).toEqual(['ka', undefined, 'kc', undefined])
    expect(keys[1]!.key).toBe(b)
    expect(keys[2]!.key).toBe(c)
    expect(raw(keys[3]!.key).toString('base64')).toBe(a.publicKey)
  })
})

describe('parseTrustedContainerKeys: bad input throws TASKAPP_ERR_INVALID_CONTAINER_KEY naming the entry', () => {
  const good = generateContainerKeyPair().publicKey
  const short = randomBytes(31).toString('base64')
  const long = randomBytes(33).toString('base64')
  const { privateKey: privateKeyObject } = generateKeyPairSync('ed25519')
  const { publicKey: x25519 } = generateKeyPairSync('x25519')

  test.each<[string, string | unknown[], RegExp]>([
    ['31 bytes', `k1:${short}`, /#1 \(kid "k1", .{1,6}\.\.\.\): decodes to 31 bytes; .* exactly 32/],
    ['33 bytes, second entry', `${good},k2:${long}`, /#2 .*decodes to 33 bytes/],
    ['not base64', 'k1:abc$def', /#1 .*not base64/],
    ['mixed alphabets', `${good.slice(0, 40)}+-`, /#1 .*not base64/],
    ['impossible length', 'abcde', /#1 .*length is impossible/],
    ['wrong padding', 'abcdef=', /#1 .*padding is wrong/],
    ['empty kid', `:${good}`, /#1 \(.{1,6}\.\.\.\): the kid must be 1 to 128 characters .*got 0 characters/],
    ['kid with a space', `k 1:${good}`, /#1 .*kid must be/],
    ['kid without a key', 'k1:', /#1 \(kid "k1"\): it is empty/],
    ['an empty list', '', /No trusted container keys/],
    ['only commas', ' , ,', /No trusted container keys/],
    ['an empty array', [], /No trusted container keys/],
    [
      'a private KeyObject',
      [privateKeyObject],
      /#1: expected an Ed25519 public KeyObject, got a private ed25519 key \(pass its public key/,
    ],
    [
      'an X25519 key',
      [good, { kid: 'x', key: x25519 }],
      /#2 \(kid "x"\): expected an Ed25519 public KeyObject, got a public x25519 key/,
    ],
    [
      'a number',
      [good, good, 42],
      /#3: expected "kid:base64", "base64", a KeyObject or \{ kid\?, key \}, got number/,
    ],
    ['key of the wrong type', [{ kid: 'k', key: 42 }], /#1 .*"key" must be base64 text or a KeyObject/],
    ['kid of the wrong type', [{ kid: 7, key: good }], /#1 .*kid must be .*got number/],
  ])('%s', (_name, input, message) => {
    const err = errorOf(() => parseTrustedContainerKeys(input as string))
    expect(isTaskServerError(err, 'TASKAPP_ERR_INVALID_CONTAINER_KEY')).toBe(true)
    expect(err.message).toMatch(message)
  })

  test('a bad key is never shown beyond a short prefix', () => {
    const secretish = randomBytes(48).toString('base64')
    const err = errorOf(() => parseTrustedContainerKeys(`k1:${secretish}`))
    expect(err.message).not.toContain(secretish.slice(0, 7))
    expect(err.message).toContain(`${secretish.slice(0, 6)}...`)
  })

  test('an over-long "kid" (a pasted key?) is not shown', () => {
    const pasted = randomBytes(120).toString('base64')
    const err = errorOf(() => parseTrustedContainerKeys(`${pasted}:${good}`))
    expect(err.message).not.toContain(pasted.slice(0, 10))
  })

  test('neither a string nor an array', () => {
    const err = errorOf(() => parseTrustedContainerKeys(null as unknown as string))
    expect(isTaskServerError(err, 'TASKAPP_ERR_INVALID_CONTAINER_KEY')).toBe(true)
  })
})

describe('decodeBase64Key', () => {
  test.each([
    ['+/8=', [0xfb, 0xff]],
    ['+/8', [0xfb, 0xff]],
    ['-_8', [0xfb, 0xff]],
    ['-_8=', [0xfb, 0xff]],
  ])('%s', (text, bytes) => {
    expect(decodeBase64Key(text)).toEqual(Buffer.from(bytes))
  })

  test.each(['', '=', 'a=b', '+_8', 'a', 'ab===', '-_8=='])('refuses %j', (text) => {
    expect(typeof decodeBase64Key(text)).toBe('string')
  })
})
