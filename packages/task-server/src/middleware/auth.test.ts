import type { NextFunction, Request, Response } from 'express'
import { describe, expect, test } from 'vitest'
import { createKeySource, resolveContainerAuth } from '../auth'
import { generateContainerKeyPair } from '../container-auth/sign'
import { silentLogger } from '../logger'
import { keyOwnerId, ownerOf } from '../owner'
import { createAuth } from './auth'

const keys = createKeySource(['sk-test-key-1'])
const base = { keys, required: true, failureStatus: 400 as const, logger: silentLogger }
const req = { headers: { 'x-api-key': 'sk-test-key-1' }, path: '/rollout' } as unknown as Request
/** A bare response: only `locals`, where the gate records the owner. */
const bareResponse = () => ({ locals: {} }) as unknown as Response

describe('createAuth', () => {
  test('without container keys: synchronous, no promise (the POST /rollout fast path gains no await)', () => {
    let called = 0
    const res = bareResponse()
    const result: unknown = createAuth(base, 'rollout')(req, res, (() => called++) as NextFunction)
    expect(result).toBeUndefined()
    expect(called).toBe(1)
    expect(ownerOf(res)).toBe(keyOwnerId('sk-test-key-1'))
  })

  test('with container keys, a valid API key still passes synchronously', () => {
    const container = resolveContainerAuth({ trustedKeys: generateContainerKeyPair().trusted }, {})
    expect(container).toBeDefined()
    let called = 0
    const res = bareResponse()
    const result: unknown = createAuth({ ...base, container }, 'rollout')(
      req,
      res,
      (() => called++) as NextFunction,
    )
    expect(result).toBeUndefined()
    expect(called).toBe(1)
    expect(ownerOf(res)).toBe(keyOwnerId('sk-test-key-1'))
  })
})

describe('resolveContainerAuth', () => {
  const trusted = generateContainerKeyPair({ kid: 'k9' }).trusted

  test('nothing configured: undefined (API keys only)', () => {
    expect(resolveContainerAuth(undefined, {})).toBeUndefined()
    expect(resolveContainerAuth({ mode: 'disabled' }, {})).toBeUndefined()
  })

  test('defaults: required, synth-backend, synth-container, 30 s', () => {
    expect(resolveContainerAuth(undefined, { SYNTH_CONTAINER_TRUSTED_PUBKEYS: trusted })).toMatchObject({
      mode: 'required',
      issuer: 'synth-backend',
      audience: 'synth-container',
      clockToleranceMs: 30_000,
      keys: [{ kid: 'k9' }],
    })
  })

  test('disabled (config or env) turns the check off', () => {
    expect(resolveContainerAuth({ trustedKeys: trusted, mode: 'disabled' }, {})).toBeUndefined()
    expect(
      resolveContainerAuth(undefined, {
        SYNTH_CONTAINER_TRUSTED_PUBKEYS: trusted,
        SYNTH_CONTAINER_AUTH_MODE: 'DISABLED',
      }),
    ).toBeUndefined()
  })
})
