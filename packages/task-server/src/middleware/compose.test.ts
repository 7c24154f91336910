import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { describe, expect, test } from 'vitest'
import { compose } from './compose'

const req = {} as Request
const res = {} as Response

function run(handlers: RequestHandler[]): Promise<{ calls: string[]; out: unknown[] }> {
  return new Promise((resolve) => {
    const calls: string[] = []
    const named = handlers.map((h, i): RequestHandler => (q, s, n) => {
      calls.push(`h${i}`)
      return h(q, s, n)
    })
    compose(named)(req, res, ((...args: unknown[]) => resolve({ calls, out: args })) as NextFunction)
  })
}

const pass: RequestHandler = (_q, _s, next) => next()

describe('compose', () => {
  test('runs the handlers in order and leaves with next() after the last', async () => {
    expect(await run([pass, pass, pass])).toEqual({ calls: ['h0', 'h1', 'h2'], out: [] })
  })

  test('a handler that answers ends the chain', async () => {
    const answered: string[] = []
    compose([pass, () => void answered.push('answered'), pass])(req, res, () => answered.push('out'))
    expect(answered).toEqual(['answered'])
  })

  test("next(err), next('route'), a throw and a rejected promise leave the chain with the error", async () => {
    const err = new Error('x')
    expect(await run([(_q, _s, next) => next(err), pass])).toEqual({ calls: ['h0'], out: [err] })
    expect(await run([(_q, _s, next) => next('route'), pass])).toEqual({ calls: ['h0'], out: ['route'] })
    const thrower: RequestHandler = () => {
      throw err
    }
    expect(await run([pass, thrower, pass])).toEqual({ calls: ['h0', 'h1'], out: [err] })
    expect(await run([() => Promise.reject(err), pass])).toEqual({ calls: ['h0'], out: [err] })
  })

  test('an async handler that calls next() after an await goes on with the chain; later failures still leave', async () => {
    const err = new Error('late')
    const asyncPass: RequestHandler = async (_q, _s, next) => {
      await Promise.resolve()
      next()
    }
    expect(await run([asyncPass, pass, asyncPass])).toEqual({ calls: ['h0', 'h1', 'h2'], out: [] })
    expect(await run([asyncPass, () => Promise.reject(err), pass])).toEqual({
      calls: ['h0', 'h1'],
      out: [err],
    })
    const thrower: RequestHandler = () => {
      throw err
    }
    expect(await run([asyncPass, thrower])).toEqual({ calls: ['h0', 'h1'], out: [err] })
  })

  test('an async handler that answers ends the chain without leaving', async () => {
    const seen: string[] = []
    let answered!: () => void
    const done = new Promise<void>((resolve) => (answered = resolve))
    const asyncAnswer: RequestHandler = async () => {
      await Promise.resolve()
      seen.push('answered')
      answered()
    }
    compose([asyncAnswer, pass])(req, res, () => seen.push('out'))
    await done
    await Promise.resolve()
    expect(seen).toEqual(['answered'])
  })
})
