/** Starting a relay node's cluster part: options, the Redis connection, the default lease store. */
import type { LeaseStore } from '../lease-store'
import type { RelayContext } from '../relay-context'
import { RelayCluster } from './cluster'
import { resolveClusterOptions } from './cluster-options'
import type { ClusterSettings, RelayClusterOptions } from './cluster-options'
import { connectRedis } from './redis-client'
import type { RelayRedis } from './redis-client'
import { createRedisLeaseStore } from './redis-lease-store'

/** A cluster connected to Redis but not started yet (the relay does not listen yet). */
export interface PreparedCluster {
  settings: ClusterSettings
  redis: RelayRedis
  /** The Redis lease store on the cluster's connection (used unless `leaseStore` was given). */
  store: LeaseStore
  /** Start the node once the relay listens at `selfUrl` (the advertised URL unless one was given). */
  start(ctx: RelayContext, selfUrl: string): Promise<RelayCluster>
  /** Undo {@link prepareCluster} when the relay fails to start. */
  abandon(): void
}

/**
 * Check `options`, connect to Redis (failing with `TASKAPP_ERR_SYNTH_RELAY_REDIS` when it does not
 * answer) and build the Redis lease store.
 * @example
 * ```ts
 * const prepared = await prepareCluster({ redis: url, advertiseUrl, secret })
 * ctx.cluster = await prepared.start(ctx)
 * ```
 */
export async function prepareCluster(options: RelayClusterOptions): Promise<PreparedCluster> {
  const settings = resolveClusterOptions(options)
  const redis = await connectRedis(settings.redis)
  return {
    settings,
    redis,
    store: createRedisLeaseStore({ redis: redis.client, prefix: settings.prefix }),
    async start(ctx, selfUrl) {
      const cluster = new RelayCluster(ctx, redis, {
        ...settings,
        advertiseUrl: settings.advertiseUrl ?? selfUrl,
      })
      await cluster.start()
      return cluster
    },
    abandon() {
      if (redis.owned) redis.client.disconnect()
    },
  }
}
