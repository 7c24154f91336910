import { describe, expect, it } from 'vitest'
import { captureIo } from '../test-helpers'
import { createCliLogger } from './output'

function failingRollout(): never {
  throw new Error('handler blew up')
}

describe('createCliLogger: errors', () => {
  it('puts name, message and code on the line and the stack (with its causes) below it', () => {
    let err: Error
    try {
      failingRollout()
    } catch (e) {
      err = new Error('wrapped', { cause: e })
      Object.assign(err, { code: 'E_WRAPPED' })
    }
    const io = captureIo()
    createCliLogger('info', io).error({ err: err!, apiKey: 'sk-live-0123456789' }, 'rollout failed')
    const [line, ...stack] = io.err().trimEnd().split('\n')
    expect(line).toBe(
      '[taskapp] ERROR rollout failed {"err":{"name":"Error","message":"wrapped","code":"E_WRAPPED"},"apiKey":"sk-l…"}',
    )
    expect(stack[0]).toMatch(/^ {4}at .*logger\.test\.ts:\d+:\d+\)?$/)
    const cause = stack.indexOf('    caused by: Error: handler blew up')
    expect(cause).toBeGreaterThan(0)
    expect(stack[cause + 1]).toMatch(/^ {6}at failingRollout .*logger\.test\.ts:\d+:\d+\)$/)
    expect(io.err()).not.toContain('sk-live-0123456789')
  })

  it('a record without an error stays one line', () => {
    const io = captureIo()
    createCliLogger('info', io).warn({ port: 1 }, 'busy')
    expect(io.err()).toBe('[taskapp] WARN busy {"port":1}\n')
  })
})
