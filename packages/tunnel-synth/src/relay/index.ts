/**
 * `@taskapp/tunnel-synth/relay`: a self-hostable SynthTunnel relay server.
 * @packageDocumentation
 */
export { createRelayServer } from './relay-server'
export type { RelayRejections, RelayServer, RelayServerOptions, RelayStats } from './relay-server'
export { createMemoryLeaseStore } from './lease-store'
export { createFileLeaseStore } from './file-lease-store'
export type { FileLeaseStoreOptions } from './file-lease-store'
export type { LeaseStore, RelayLease } from './lease-store'
export { relayOptionsFromEnv } from './options-from-env'
export { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
export type { Logger } from '../types'
export type { RelayAdminOptions, RelayClusterProbe, RelayClusterStats } from './admin/admin-options'
