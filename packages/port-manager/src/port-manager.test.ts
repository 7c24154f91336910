import { createServer as createHttpServer } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import {
  PortManagerError,
  findAvailablePort,
  findPortOwner,
  isLoopbackHost,
  isPortAvailable,
  killPortOwner,
  listen,
  type PortConflictEvent,
} from './index'
import { disposableServer, holdPortInChild } from './test-helpers'

function closeAll(servers: { close(cb?: () => void): unknown; listening: boolean }[]) {
  return Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))))
}

/**
 * A port that is free now, picked below Linux's ephemeral range (32768-60999) so that other
 * processes binding port 0 (parallel test suites) cannot be handed it in the meantime.
 */
async function freePort(): Promise<number> {
  for (;;) {
    const candidate = 20_000 + Math.floor(Math.random() * 12_000)
    const s = createServer()
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false))
      s.listen(candidate, '127.0.0.1', () => resolve(true))
    })
    if (ok) {
      await new Promise<void>((r) => s.close(() => r()))
      return candidate
    }
  }
}

describe('validation (before any side effect)', () => {
  const cases: [string, () => Promise<unknown>, string][] = [
    ['port below 1024', () => listen(disposableServer(), { port: 80 }), 'TASKAPP_ERR_INVALID_PORT'],
    ['port above 65535', () => listen(disposableServer(), { port: 70000 }), 'TASKAPP_ERR_INVALID_PORT'],
    ['fractional port', () => listen(disposableServer(), { port: 8114.5 }), 'TASKAPP_ERR_INVALID_PORT'],
    ['string port', () => listen(disposableServer(), { port: '8114' as never }), 'TASKAPP_ERR_INVALID_PORT'],
    ['non-loopback host', () => listen(disposableServer(), { host: '0.0.0.0' }), 'TASKAPP_ERR_INVALID_HOST'],
    ['empty host', () => listen(disposableServer(), { host: '' }), 'TASKAPP_ERR_INVALID_HOST'],
    [
      'bad onConflict',
      () => listen(disposableServer(), { onConflict: 'steal' as never }),
      'TASKAPP_ERR_INVALID_OPTIONS',
    ],
    ['maxAttempts 0', () => listen(disposableServer(), { maxAttempts: 0 }), 'TASKAPP_ERR_INVALID_OPTIONS'],
    ['isPortAvailable(0)', () => isPortAvailable(0), 'TASKAPP_ERR_INVALID_PORT'],
    [
      'isPortAvailable on a LAN host',
      () => isPortAvailable(8114, { host: '10.0.0.1' }),
      'TASKAPP_ERR_INVALID_HOST',
    ],
    [
      'findAvailablePort preferred 99',
      () => findAvailablePort({ preferred: 99 }),
      'TASKAPP_ERR_INVALID_PORT',
    ],
    ['findPortOwner(1)', () => findPortOwner(1), 'TASKAPP_ERR_INVALID_PORT'],
    ['killPortOwner(-1)', () => killPortOwner(-1), 'TASKAPP_ERR_INVALID_PORT'],
  ]
  it.each(cases)('%s → code', async (_name, run, code) => {
    const err = await run().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(PortManagerError)
    expect((err as PortManagerError).code).toBe(code)
    expect((err as PortManagerError).message.length).toBeGreaterThan(20)
  })

  it('a refused host is carried as data, so a caller can word the error its own way', async () => {
    const err = await listen(disposableServer(), { host: '10.0.0.1' }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_INVALID_HOST', host: '10.0.0.1' })
  })

  it('leaves the server unbound after a validation error', async () => {
    const server = disposableServer()
    await expect(listen(server, { port: 1 })).rejects.toThrow(PortManagerError)
    expect(server.listening).toBe(false)
  })

  it('a non-loopback host is allowed with the explicit opt-in', async () => {
    // 0.0.0.0 is only *bound* here; no traffic is sent anywhere.
    await using server = disposableServer()
    const port = await listen(server, { host: '0.0.0.0', allowNonLoopback: true })
    expect(port).toBeGreaterThan(0)
  })

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) {
      expect(isLoopbackHost(h), h).toBe(true)
    }
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.com', '::ffff:10.0.0.1']) {
      expect(isLoopbackHost(h), h).toBe(false)
    }
  })
})

describe('listen', () => {
  it('binds the requested port when it is free and returns it', async () => {
    await using server = disposableServer()
    const port = await freePort()
    expect(await listen(server, { port })).toBe(port)
    expect((server.address() as AddressInfo).port).toBe(port)
  })

  it('port 0 binds any free port', async () => {
    await using server = disposableServer()
    const port = await listen(server)
    expect(port).toBeGreaterThanOrEqual(1024)
  })

  it('many servers racing for one preferred port all end bound on distinct ports, every time', async () => {
    for (let round = 0; round < 15; round++) {
      const preferred = await freePort()
      const servers = Array.from({ length: 12 }, () => createHttpServer((_req, res) => res.end('ok')))
      try {
        const ports = await Promise.all(servers.map((s) => listen(s, { port: preferred })))
        expect(new Set(ports).size).toBe(servers.length)
        expect(ports).toContain(preferred)
        for (const [i, s] of servers.entries()) {
          expect(s.listening).toBe(true)
          expect((s.address() as AddressInfo).port).toBe(ports[i])
        }
      } finally {
        await closeAll(servers)
      }
    }
  })

  it('racing against another process for the same port: both end bound, distinct ports', async () => {
    for (let round = 0; round < 5; round++) {
      const preferred = await freePort()
      const servers = Array.from({ length: 4 }, () => disposableServer())
      const [holderResult, ...ports] = await Promise.allSettled([
        holdPortInChild({ port: preferred }),
        ...servers.map((s) => listen(s, { port: preferred })),
      ])
      try {
        const bound = ports.map((p) => (p.status === 'fulfilled' ? p.value : -1))
        expect(bound.every((p) => p > 0)).toBe(true)
        expect(new Set(bound).size).toBe(servers.length)
        if (holderResult.status === 'fulfilled') expect(bound).not.toContain(preferred)
      } finally {
        if (holderResult.status === 'fulfilled') await holderResult.value.close()
        await closeAll(servers)
      }
    }
  })

  it("onConflict 'next' skips a port held by another process", async () => {
    await using holder = await holdPortInChild()
    await using server = disposableServer()
    const port = await listen(server, { port: holder.port })
    expect(port).not.toBe(holder.port)
  })

  it("onConflict 'next' tells onConflictResolved which port was taken, by whom, and where it bound", async () => {
    await using holder = await holdPortInChild()
    await using server = disposableServer()
    const events: PortConflictEvent[] = []
    const port = await listen(server, { port: holder.port, onConflictResolved: (e) => events.push(e) })
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ policy: 'next', port: holder.port, host: '127.0.0.1', boundPort: port })
    if (process.platform === 'linux') {
      expect(events[0]?.owner?.pid).toBe(holder.pid)
      expect(events[0]?.owner?.command).toContain('hold-port.mjs')
    }
  })

  it('onConflictResolved is not called for a free port, and a hook that throws does not undo the bind', async () => {
    await using server = disposableServer()
    const hook = vi.fn()
    await listen(server, { port: 0, onConflictResolved: hook })
    expect(hook).not.toHaveBeenCalled()
    await using holder = await holdPortInChild()
    await using second = disposableServer()
    const port = await listen(second, {
      port: holder.port,
      onConflictResolved: () => {
        throw new Error('hook failed')
      },
    })
    expect(second.listening).toBe(true)
    expect(port).not.toBe(holder.port)
  })

  it("onConflict 'error' names the port, the PID and command of the holder, and the ways out", async () => {
    await using holder = await holdPortInChild()
    await using server = disposableServer()
    const err = await listen(server, { port: holder.port, onConflict: 'error' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PortManagerError)
    const e = err as PortManagerError
    expect(e.code).toBe('TASKAPP_ERR_PORT_IN_USE')
    expect(e.port).toBe(holder.port)
    expect(e).toMatchObject({ host: '127.0.0.1', policy: 'error' })
    expect(e.owner?.pid).toBe(holder.pid)
    expect(e.owner?.command).toContain('hold-port.mjs')
    expect(e.message).toContain(String(holder.port))
    expect(e.message).toContain(`PID ${holder.pid}`)
    expect(e.message).toContain("onConflict: 'next'")
    expect(e.message).toMatch(/another port/)
    expect((e.cause as NodeJS.ErrnoException).code).toBe('EADDRINUSE')
    expect(server.listening).toBe(false)
  })

  it("onConflict 'kill' stops the holder and binds the same port, and says whom it stopped", async () => {
    await using holder = await holdPortInChild()
    await using server = disposableServer()
    const events: PortConflictEvent[] = []
    const port = await listen(server, {
      port: holder.port,
      onConflict: 'kill',
      onConflictResolved: (e) => events.push(e),
    })
    expect(port).toBe(holder.port)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ policy: 'kill', port: holder.port, boundPort: holder.port })
    if (process.platform === 'linux') expect(events[0]?.owner?.pid).toBe(holder.pid)
    await vi.waitFor(() => expect(holder.child.exitCode ?? holder.child.signalCode).not.toBeNull(), {
      timeout: 10_000,
      interval: 10,
    })
    expect(holder.child.signalCode).toBe('SIGTERM')
  })

  it("onConflict 'kill' escalates to SIGKILL when the holder ignores SIGTERM", async () => {
    await using holder = await holdPortInChild({ ignoreSigterm: true })
    await using server = disposableServer()
    const port = await listen(server, { port: holder.port, onConflict: 'kill', killTimeoutMs: 300 })
    expect(port).toBe(holder.port)
    await expect.poll(() => holder.child.signalCode, { timeout: 10_000, interval: 10 }).not.toBeNull()
    expect(holder.child.signalCode).toBe('SIGKILL')
  })

  it.runIf(process.platform === 'linux')(
    "onConflict 'kill' retries the bind until the port is released, not just its named holder gone",
    async () => {
      // A helper shares the holder's socket and keeps the port 300 ms after the holder dies, so
      // the first bind after the kill meets EADDRINUSE (as when the kernel releases it late).
      await using holder = await holdPortInChild({ sharedLingerMs: 300 })
      await using server = disposableServer()
      const port = await listen(server, { port: holder.port, onConflict: 'kill' })
      expect(port).toBe(holder.port)
      expect(server.listening).toBe(true)
    },
  )

  it.runIf(process.platform === 'linux')(
    "onConflict 'kill' gives TASKAPP_ERR_PORT_IN_USE naming the process still holding the port after killTimeoutMs",
    async () => {
      await using holder = await holdPortInChild({ sharedLingerMs: 60_000 })
      await using server = disposableServer()
      const err = await listen(server, { port: holder.port, onConflict: 'kill', killTimeoutMs: 300 }).catch(
        (e: unknown) => e,
      )
      expect(err).toBeInstanceOf(PortManagerError)
      const e = err as PortManagerError
      expect(e.code).toBe('TASKAPP_ERR_PORT_IN_USE')
      expect(e.policy).toBe('kill')
      expect([holder.pid, holder.sharerPid]).toContain(e.owner?.pid)
      expect((e.cause as NodeJS.ErrnoException).code).toBe('EADDRINUSE')
      expect(server.listening).toBe(false)
    },
  )

  it('gives TASKAPP_ERR_NO_FREE_PORT when every attempt collides', async () => {
    await using holder = await holdPortInChild()
    await using server = disposableServer()
    const err = await listen(server, { port: holder.port, maxAttempts: 1 }).catch((e: unknown) => e)
    expect((err as PortManagerError).code).toBe('TASKAPP_ERR_NO_FREE_PORT')
    expect((err as PortManagerError).message).toMatch(/maxAttempts/)
    expect(err).toMatchObject({ port: holder.port, host: '127.0.0.1', attempts: 1 })
  })

  it('rejects with signal.reason when aborted before binding', async () => {
    await using server = disposableServer()
    const reason = new Error('stop now')
    await expect(listen(server, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    expect(server.listening).toBe(false)
  })

  it('passes through bind errors other than EADDRINUSE', async () => {
    await using first = disposableServer()
    await listen(first)
    await expect(listen(first)).rejects.toMatchObject({ code: 'TASKAPP_ERR_INVALID_OPTIONS' })
  })
})

describe('isPortAvailable / findAvailablePort', () => {
  it('reports a held port as taken and a released one as free', async () => {
    const server = disposableServer()
    const port = await listen(server)
    expect(await isPortAvailable(port)).toBe(false)
    await server[Symbol.asyncDispose]()
    expect(await isPortAvailable(port)).toBe(true)
  })

  it('returns the preferred port when free, another when taken, never an excluded one', async () => {
    // A port found free can be taken by another process before the call (suites run side by side
    // on one machine), so the preferred port must come back on at least one of a few tries.
    let returnedPreferred = false
    for (let attempt = 0; attempt < 5 && !returnedPreferred; attempt++) {
      const preferred = await freePort()
      returnedPreferred = (await findAvailablePort({ preferred, exclude: [] })) === preferred
    }
    expect(returnedPreferred).toBe(true)
    const preferred = await freePort()
    await using holder = await holdPortInChild({ port: preferred })
    const other = await findAvailablePort({ preferred: holder.port })
    expect(other).not.toBe(holder.port)
    const p = await findAvailablePort({ preferred: other, exclude: [other] })
    expect(p).not.toBe(other)
  })

  it('concurrent callers get distinct ports', async () => {
    const preferred = await freePort()
    const ports = await Promise.all(Array.from({ length: 10 }, () => findAvailablePort({ preferred })))
    expect(new Set(ports).size).toBe(10)
  })
})

describe('findPortOwner / killPortOwner', () => {
  it.runIf(process.platform === 'linux')('finds the PID and command of a child holding a port', async () => {
    await using holder = await holdPortInChild()
    const owner = await findPortOwner(holder.port)
    expect(owner).toEqual({ pid: holder.pid, command: expect.stringContaining('hold-port.mjs') })
  })

  it('returns undefined for a port nobody listens on', async () => {
    expect(await findPortOwner(await freePort())).toBeUndefined()
    expect(await killPortOwner(await freePort())).toBeUndefined()
  })

  it('finds this process as the owner of its own server, and refuses to kill it', async () => {
    await using server = disposableServer()
    const port = await listen(server)
    expect((await findPortOwner(port))?.pid).toBe(process.pid)
    await expect(killPortOwner(port)).rejects.toMatchObject({ code: 'TASKAPP_ERR_KILL_REFUSED' })
    expect(server.listening).toBe(true)
  })

  it('kills a holder and reports it', async () => {
    const holder = await holdPortInChild()
    onTestFinished(() => holder.close())
    const owner = await killPortOwner(holder.port, { timeoutMs: 5000 })
    expect(owner?.pid).toBe(holder.pid)
    expect(await isPortAvailable(holder.port)).toBe(true)
  })
})
