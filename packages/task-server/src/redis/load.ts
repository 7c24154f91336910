/**
 * ioredis, loaded on first use: it is an optional peer dependency, so a task app that never asks
 * for the Redis job store need not install it. Only the few client methods the store calls are
 * typed here, so no ioredis type reaches this package's public declarations.
 */
import { TaskServerError } from '../errors'

/** What the store calls on a command connection. @internal */
export interface CommandClient {
  readonly status: string
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>
  hget(key: string, field: string): Promise<string | null>
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>
  duplicate(): SubscriberClient
  connect(): Promise<void>
  quit(): Promise<unknown>
  disconnect(): void
  on(event: 'error', listener: (err: Error) => void): unknown
}

/** What the store calls on its subscriber connection. @internal */
export interface SubscriberClient {
  readonly status: string
  subscribe(channel: string): Promise<unknown>
  connect(): Promise<void>
  quit(): Promise<unknown>
  disconnect(): void
  on(event: 'message', listener: (channel: string, message: string) => void): unknown
  on(event: 'ready', listener: () => void): unknown
  on(event: 'error', listener: (err: Error) => void): unknown
}

/** The `Redis` constructor of ioredis, as far as the store uses it. @internal */
export type RedisConstructor = new (url: string, options: Record<string, unknown>) => CommandClient

/** Imports ioredis. Internal seam: a test passes one that fails like a missing package. @internal */
export type IoredisLoader = () => Promise<{ Redis: RedisConstructor }>

const importIoredis: IoredisLoader = async () => {
  const mod = (await import('ioredis')) as unknown as { Redis: RedisConstructor }
  return { Redis: mod.Redis }
}

/** True when `err` is Node's "package ioredis not found". */
function isIoredisMissing(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null
  const code = typeof e?.code === 'string' ? e.code : ''
  const message = typeof e?.message === 'string' ? e.message : ''
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && /['"]ioredis['"/]/.test(message)
}

/**
 * The ioredis `Redis` constructor; `TASKAPP_ERR_IOREDIS_MISSING` when the package is not installed.
 * @internal
 */
export async function loadIoredis(load: IoredisLoader = importIoredis): Promise<RedisConstructor> {
  try {
    return (await load()).Redis
  } catch (err) {
    if (!isIoredisMissing(err)) throw err
    throw new TaskServerError(
      'TASKAPP_ERR_IOREDIS_MISSING',
      'createRedisJobStore({ redis: url }) needs the package ioredis, which is not installed: add it ' +
        '(npm install ioredis@5), or pass a client you made yourself as `redis`.',
      { cause: err },
    )
  }
}
