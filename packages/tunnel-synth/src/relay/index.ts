/**
 * `@taskapp/tunnel-synth/relay`: a self-hostable SynthTunnel relay server.
 * @packageDocumentation
 */
export { createRelayServer } from './relay-server'
export type { RelayRejections, RelayServer, RelayServerOptions, RelayStats } from './relay-server'
export { createMemoryLeaseStore } from './lease-store'
export { createFileLeaseStore } from './file-lease-store'
export type { FileLeaseStoreOptions } from './file-lease-store'
export { createRedisLeaseStore } from './cluster/redis-lease-store'
export type { RedisLeaseStore, RedisLeaseStoreOptions } from './cluster/redis-lease-store'
export type { RelayClusterOptions } from './cluster/cluster-options'
export type { RelayClusterHandle, RelayClusterStats } from './cluster/cluster'
export type { LeaseStore, RelayLease } from './lease-store'
export { relayOptionsFromEnv } from './options-from-env'
export { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
export type { Logger } from '../types'
export type { RelayAdminOptions, RelayClusterProbe } from './admin/admin-options'
