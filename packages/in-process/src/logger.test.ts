import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { defaultLogger, redact } from './logger'

describe('defaultLogger', () => {
  it('writes WARN and ERROR as one stderr line each, and nothing for DEBUG and INFO', () => {
    const writes: string[] = []
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk))
      return true
    })
    onTestFinished(() => spy.mockRestore())
    defaultLogger.debug({ a: 1 }, 'debug line')
    defaultLogger.info({ a: 1 }, 'info line')
    defaultLogger.warn({ port: 8114 }, 'port busy')
    defaultLogger.error({ error: Object.assign(new Error('boom'), { code: 'X' }) }, 'failed')
    spy.mockRestore()
    expect(writes).toEqual([
      '[taskapp] WARN port busy {"port":8114}\n',
      '[taskapp] ERROR failed {"error":{"name":"Error","message":"boom","code":"X"}}\n',
    ])
  })
})

describe('redact', () => {
  it.each([
    ['sk_live_1234567890', 'sk_l…'],
    ['short', '…'],
    [undefined, '<unset>'],
  ])('%s → %s', (secret, shown) => {
    expect(redact(secret)).toBe(shown)
  })
})
