/**
 * Helpers for this package's tests (not exported from the package, not in its tarball): a local
 * server standing in for the task app, a whole relay + agent + local server stack, forked
 * fixtures, and deadlines for events and promises. The shared ones (deferred, listenLoopback) come
 * from `@taskapp/test-utils`; polling is Vitest's `vi.waitFor` / `expect.poll`.
 */
import { createHash } from 'node:crypto'
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import type { EventEmitter } from 'node:events'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import { listenLoopback } from '@taskapp/test-utils'
import { expect, onTestFinished, vi } from 'vitest'
import { SynthTunnelError, SynthTunnelErrorCode } from './errors'
import { createRelayServer } from './relay/relay-server'
import type { RelayServer, RelayServerOptions } from './relay/relay-server'
import type { RelayLease } from './relay/lease-store'
import { synthTunnel } from './synth-tunnel'
import type { SynthOpenTunnel, SynthTunnelOptions } from './synth-tunnel'

/** A real local HTTP server on 127.0.0.1:0 standing in for the task app. */
export interface LocalServer extends AsyncDisposable {
  url: string
  port: number
  host: string
  server: Server
  target: { localUrl: string; port: number; host: string }
  close(): Promise<void>
}

/** Starts `handler` on 127.0.0.1:0; a handler that throws or rejects answers 500. */
export async function startLocalServer(
  handler: (req: IncomingMessage, res: ServerResponse) => unknown,
): Promise<LocalServer> {
  const server = createServer((req, res) => {
    Promise.resolve(handler(req, res) as Promise<unknown>).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500)
      res.end(String(err))
    })
  })
  server.keepAliveTimeout = 2_000
  const { url, port, host, close } = await listenLoopback(server)
  return {
    url,
    port,
    host,
    server,
    target: { localUrl: url, port, host },
    close,
    [Symbol.asyncDispose]: close,
  }
}

/** Read a request body fully. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** A real relay + real agent + real local server on loopback, torn down in reverse order. */
export interface Stack extends AsyncDisposable {
  relay: RelayServer
  local: LocalServer
  tunnel: SynthOpenTunnel
  close(): Promise<void>
}

export async function startStack(
  handler: (req: IncomingMessage, res: ServerResponse) => unknown,
  {
    relay: relayOptions = {},
    agent: agentOptions = {},
    path = 'socket',
  }: {
    relay?: RelayServerOptions
    agent?: SynthTunnelOptions
    /** `request` / `connection`: the target carries the server (the in-process path, that mode); `socket`: loopback TCP. */
    path?: 'socket' | 'request' | 'connection'
  } = {},
): Promise<Stack> {
  const local = await startLocalServer(handler)
  const relay = await createRelayServer({ apiKeys: ['test-relay-key'], ...relayOptions })
  let tunnel: SynthOpenTunnel
  try {
    tunnel = await synthTunnel({
      backendUrl: relay.url,
      apiKey: 'test-relay-key',
      localApiKeys: [],
      env: {},
      ...(path === 'socket' ? {} : { inProcess: path }),
      ...agentOptions,
    }).open(path === 'socket' ? local.target : { ...local.target, server: local.server })
  } catch (err) {
    await relay.close()
    await local.close()
    throw err
  }
  const close = async () => {
    await tunnel.close()
    await relay.close()
    await local.close()
  }
  return { relay, local, tunnel, close, [Symbol.asyncDispose]: close }
}

/**
 * Fork a fixture script of `src/fixtures`, run from source with tsx (IPC on, output inherited). If it
 * is still running when the test ends, it is killed with SIGKILL and awaited.
 */
export function forkFixture(file: string, args: string[], extraExecArgv: string[] = []): ChildProcess {
  const child = fork(fileURLToPath(new URL(`./fixtures/${file}`, import.meta.url)), args, {
    execArgv: ['--conditions=@taskapp/source', '--import', 'tsx', ...extraExecArgv],
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    }
  })
  return child
}

/** Resolve on the next `event` of `emitter`, reject after `timeoutMs`. */
export function nextEvent<T = unknown>(emitter: EventEmitter, event: string, timeoutMs = 5_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on)
      reject(new Error(`nextEvent: no "${event}" within ${timeoutMs} ms`))
    }, timeoutMs)
    timer.unref()
    const on = (value: T) => {
      clearTimeout(timer)
      resolve(value)
    }
    emitter.once(event, on)
  })
}

/** Reject if `promise` does not settle within `timeoutMs`. */
export function within<T>(promise: Promise<T>, timeoutMs: number, what = 'operation'): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not settle within ${timeoutMs} ms`)),
      timeoutMs,
    )
    timer.unref()
    promise.then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      (e: unknown) => {
        clearTimeout(timer)
        reject(e)
      },
    )
  })
}

/**
 * Waits (up to `timeoutMs`) for the first frame of `type` in `frames`, an array a peer fills as
 * frames arrive, and resolves with it.
 */
export function waitForFrame<F extends { type?: unknown }>(
  frames: F[],
  type: string,
  timeoutMs = 5_000,
): Promise<F> {
  return vi.waitFor(
    () => {
      const frame = frames.find((f) => f.type === type)
      expect(frame, `a ${type} frame`).toBeDefined()
      return frame!
    },
    { timeout: timeoutMs, interval: 5 },
  )
}

/** A lease for store tests: every field follows from `n` (hashes of `at_n`, `wt_n`, key `k`); `overrides` win. */
export function testLease(n: number, overrides: Partial<RelayLease> = {}): RelayLease {
  const sha = (text: string) => createHash('sha256').update(text).digest('hex')
  return {
    leaseId: `lease_${n}`,
    routeToken: `rt_${n}`,
    agentTokenHash: sha(`at_${n}`),
    workerTokenHash: sha(`wt_${n}`),
    ownerKeyHash: sha('k'),
    clientInstanceId: `client-${n}`,
    localTarget: { host: '127.0.0.1', port: 8000 + n },
    createdAt: Date.now(),
    expiresAt: Date.now() + 3_600_000,
    ...overrides,
  }
}

/** Runs `fn` and returns the `TASKAPP_ERR_SYNTH_RELAY_LEASE_FILE` error it throws (fails the test otherwise). */
export function leaseFileError(fn: () => unknown): SynthTunnelError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(SynthTunnelError)
    expect((err as SynthTunnelError).code).toBe(SynthTunnelErrorCode.RelayLeaseFile)
    return err as SynthTunnelError
  }
  throw new Error('expected a TASKAPP_ERR_SYNTH_RELAY_LEASE_FILE error')
}
