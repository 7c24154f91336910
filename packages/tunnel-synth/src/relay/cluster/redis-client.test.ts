/**
 * ioredis missing: a double, since the real package is installed in this workspace (uninstalling it
 * for one test is not possible); the module mock makes its import fail as it would without it.
 */
import { afterEach, expect, test, vi } from 'vitest'
import { SynthTunnelErrorCode } from '../../errors'

afterEach(() => {
  vi.doUnmock('ioredis')
  vi.resetModules()
})

test('without ioredis, connecting rejects with TASKAPP_ERR_SYNTH_REDIS_CLIENT_MISSING naming the package', async () => {
  vi.resetModules()
  vi.doMock('ioredis', () => {
    throw new Error("Cannot find package 'ioredis'")
  })
  const { createRedisLeaseStore } = await import('./redis-lease-store')
  const store = createRedisLeaseStore({ redis: 'redis://127.0.0.1:1' })
  await expect(store.size()).rejects.toMatchObject({
    code: SynthTunnelErrorCode.RedisClientMissing,
    message: expect.stringMatching(/install it \(pnpm add ioredis\)/),
  })
  await store.close()
})
