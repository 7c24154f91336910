import { createServer } from 'node:net'
import { describe, expect, it, vi } from 'vitest'
import { deferred, isProcessAlive, listenLoopback, recordingLogger, spawnProcess } from './index'

describe('@taskapp/test-utils', () => {
  it('deferred settles from outside', async () => {
    const ok = deferred<number>()
    ok.resolve(1)
    expect(await ok.promise).toBe(1)
    const bad = deferred()
    bad.reject(new Error('no'))
    await expect(bad.promise).rejects.toThrow('no')
  })

  it('listenLoopback serves on 127.0.0.1 at a free port and closes on dispose', async () => {
    let url: string
    {
      await using server = await listenLoopback((_req, res) => res.end('ok'))
      url = server.url
      expect(server.port).toBeGreaterThan(0)
      expect(url).toBe(`http://127.0.0.1:${server.port}`)
      expect(await (await fetch(url)).text()).toBe('ok')
    }
    await expect(fetch(url)).rejects.toThrow()
  })

  it('listenLoopback takes a net server too, and close() is idempotent', async () => {
    const server = await listenLoopback(createServer((s) => s.end()))
    expect(server.server.listening).toBe(true)
    await server.close()
    await server.close()
    expect(server.server.listening).toBe(false)
  })

  it('recordingLogger records every call', () => {
    const logger = recordingLogger()
    logger.info({ a: 1 }, 'hello')
    logger.warn({})
    expect(logger.records).toEqual([
      { level: 'info', obj: { a: 1 }, msg: 'hello' },
      { level: 'warn', obj: {}, msg: undefined },
    ])
  })

  it('spawnProcess captures lines, JSON lines and the exit', async () => {
    await using proc = spawnProcess(process.execPath, [
      '-e',
      'console.log("hello 42"); console.log(JSON.stringify({ event: "ready" })); console.error("err")',
    ])
    const [, n] = await proc.waitForLine(/^hello (\d+)$/)
    expect(n).toBe('42')
    expect(await proc.waitForJson((l) => l.event === 'ready', 'ready')).toEqual({ event: 'ready' })
    expect(await proc.exited).toEqual({ code: 0, signal: null })
    expect(proc.stderr()).toBe('err\n')
    await expect(proc.waitForLine(/never/)).rejects.toThrow(/exited before printing/)
  })

  it('disposing a spawned process kills it; isProcessAlive sees it go', async () => {
    const proc = spawnProcess(process.execPath, ['-e', 'setInterval(() => {}, 1000); console.log("up")'])
    await proc.waitForLine(/^up$/)
    expect(isProcessAlive(proc.pid)).toBe(true)
    await proc.close()
    expect(await proc.exited).toEqual({ code: null, signal: 'SIGKILL' })
    await vi.waitFor(() => expect(isProcessAlive(proc.pid)).toBe(false), { timeout: 5_000 })
  })
})
