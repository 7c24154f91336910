/**
 * @taskapp/tunnel-cloudflare: Cloudflare quick and named tunnels through `cloudflared`, with a
 * watchdog so no cloudflared outlives the process, and a checksum-verified installer.
 */
export { cloudflareQuickTunnel, cloudflareNamedTunnel } from './tunnel'
export type {
  CloudflareTunnelOptions,
  CloudflareNamedTunnelOptions,
  CloudflareTunnel,
  CloudflareTunnelBackend,
} from './tunnel'
export { verifyTunnel } from './verify'
export type { VerifyTunnelOptions, VerifyTunnelResult } from './verify'
export {
  installCloudflared,
  cloudflaredAssetName,
  parseChecksums,
  DEFAULT_RELEASES_URL,
  DEFAULT_RELEASES_API_URL,
} from './install'
export type { InstallCloudflaredOptions, InstalledCloudflared } from './install'
export { findCloudflared, defaultInstallDir } from './find-binary'
export type { FindCloudflaredOptions, FoundCloudflared } from './find-binary'
export { killAllTrackedChildren, trackedChildCount } from './registry'
export { parseCloudflaredLine } from './log-parser'
export type { ParsedLine } from './log-parser'
export { CloudflareTunnelError, CloudflareTunnelErrorCode } from './errors'
export type { CloudflareTunnelErrorDetails } from './errors'
export type { TunnelBackend, OpenTunnel, TunnelTarget, TunnelLogger } from './types'
