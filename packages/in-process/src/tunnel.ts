/**
 * The structural `TunnelBackend` contract, declared once in `@taskapp/core`.
 */
export type { OpenTunnel, TunnelBackend, TunnelTarget } from '@taskapp/core'
