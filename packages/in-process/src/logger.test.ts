import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { defaultLogger, redact } from './logger'

describe('defaultLogger', () => {
  it('writes WARN and ERROR as one stderr line each (an error stack below), nothing for DEBUG and INFO', () => {
    const writes: string[] = []
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk))
      return true
    })
    onTestFinished(() => spy.mockRestore())
    defaultLogger.debug({ a: 1 }, 'debug line')
    defaultLogger.info({ a: 1 }, 'info line')
    defaultLogger.warn({ port: 8114 }, 'port busy')
    const boom = Object.assign(new Error('boom'), { code: 'X' })
    defaultLogger.error({ error: boom }, 'failed')
    spy.mockRestore()
    expect(writes).toHaveLength(2)
    expect(writes[0]).toBe('[taskapp] WARN port busy {"port":8114}\n')
    const [line, ...stack] = writes[1]!.trimEnd().split('\n')
    expect(line).toBe('[taskapp] ERROR failed {"error":{"name":"Error","message":"boom","code":"X"}}')
    expect(stack[0]).toMatch(/^ {4}at .*logger\.test\.ts:\d+:\d+\)?$/)
    expect(stack.every((l) => l.startsWith('    at '))).toBe(true)
  })

  it('reports DEBUG and INFO disabled, so callers build no record for them', () => {
    expect(['debug', 'info', 'warn', 'error'].map((l) => defaultLogger.isLevelEnabled?.(l))).toEqual([
      false,
      false,
      true,
      true,
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
