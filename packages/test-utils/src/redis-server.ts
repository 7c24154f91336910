import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { RedisOptions } from 'ioredis'

/** A private `redis-server` child on a Unix socket in a temporary folder (see {@link startRedisServer}). */
export interface TestRedisServer extends AsyncDisposable {
  /** The Unix socket the server listens on (it never listens on TCP). */
  readonly socketPath: string
  /** `redis+unix:` style URL for code that takes a URL: `redis:///<socket>` is not standard, so this is `unix://<socket>`. */
  readonly url: string
  /** A fresh key prefix, unique per call: give each test its own (tests never FLUSHALL). */
  prefix(): string
  /** A connected ioredis client to this server (closed by {@link TestRedisServer.close}). */
  client(options?: RedisOptions): Redis
  /** Connections the server holds right now (`CLIENT LIST`), the asking one included: for leak checks. */
  connections(): Promise<number>
  /** Stops the server (SIGTERM, then SIGKILL after 5 s); the socket path stays reserved. */
  stop(): Promise<void>
  /** Starts the server again on the same socket (after {@link TestRedisServer.stop}); data is gone. */
  restart(): Promise<void>
  /** Stops the server, closes the clients, removes the folder. Idempotent. */
  close(): Promise<void>
}

const READY_DEADLINE_MS = 15_000

/**
 * Starts a real `redis-server` (from `PATH`) for one test file: Unix socket only (`--port 0`, so
 * no port can collide), no persistence, in a temporary folder removed on close. The machine's
 * own Redis is never used. Fails with the server's output when it does not start within 15 s.
 *
 * @example
 * ```ts
 * await using redis = await startRedisServer()
 * const client = redis.client()
 * await client.set(`${redis.prefix()}k`, 'v')
 * ```
 */
export async function startRedisServer(): Promise<TestRedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'taskapp-redis-'))
  const socketPath = join(dir, 'redis.sock')
  const clients = new Set<Redis>()
  let child: ChildProcess | undefined
  let closed = false
  let probe: Redis | undefined

  const start = async () => {
    child = await spawnRedis(socketPath, dir)
  }

  const stop = async () => {
    const proc = child
    child = undefined
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }

  try {
    await start()
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  const server: TestRedisServer = {
    socketPath,
    url: `unix://${socketPath}`,
    prefix: () => `test:${randomUUID().slice(0, 8)}:`,
    client(options = {}) {
      const c = new Redis({ path: socketPath, lazyConnect: false, maxRetriesPerRequest: 1, ...options })
      clients.add(c)
      c.once('end', () => clients.delete(c))
      return c
    },
    async connections() {
      probe ??= server.client()
      return String(await probe.call('CLIENT', 'LIST'))
        .trim()
        .split('\n').length
    },
    stop,
    restart: async () => {
      await stop()
      await start()
    },
    async close() {
      if (closed) return
      closed = true
      for (const c of clients) c.disconnect()
      clients.clear()
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
    [Symbol.asyncDispose]: () => server.close(),
  }
  return server
}

/** Spawns `redis-server` on `socketPath` and resolves once it says it is ready. */
async function spawnRedis(socketPath: string, dir: string): Promise<ChildProcess> {
  const args = [
    '--port',
    '0',
    '--unixsocket',
    socketPath,
    '--unixsocketperm',
    '700',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ]
  const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  proc.stdout?.on('data', (c: Buffer) => (output += c.toString()))
  proc.stderr?.on('data', (c: Buffer) => (output += c.toString()))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`redis-server did not start within ${READY_DEADLINE_MS} ms:\n${output}`)),
      READY_DEADLINE_MS,
    )
    const onData = () => {
      if (/ready to accept connections/i.test(output)) done()
    }
    const onExit = (code: number | null) =>
      fail(new Error(`redis-server exited (${code}) before it was ready:\n${output}`))
    const onError = (err: Error) =>
      fail(new Error(`redis-server could not be started (is it on PATH?): ${err.message}`))
    const cleanup = () => {
      clearTimeout(timer)
      proc.stdout?.off('data', onData)
      proc.off('exit', onExit)
      proc.off('error', onError)
    }
    const done = () => (cleanup(), resolve())
    const fail = (err: Error) => (cleanup(), proc.kill('SIGKILL'), reject(err))
    proc.stdout?.on('data', onData)
    proc.once('exit', onExit)
    proc.once('error', onError)
    onData()
  })
  return proc
}
