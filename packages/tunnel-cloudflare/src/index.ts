/**
 * @taskapp/tunnel-cloudflare: Cloudflare quick and named tunnels through `cloudflared`, with a
 * watchdog so no cloudflared outlives the process, and a checksum-verified installer.
 */
export { cloudflareQuickTunnel, cloudflareNamedTunnel } from './tunnel.js'
export type {
  CloudflareTunnelOptions,
  CloudflareNamedTunnelOptions,
  CloudflareTunnel,
  CloudflareTunnelBackend,
} from './tunnel.js'
export { verifyTunnel } from './verify.js'
export type { VerifyTunnelOptions, VerifyTunnelResult } from './verify.js'
export {
  installCloudflared,
  cloudflaredAssetName,
  parseChecksums,
  DEFAULT_RELEASES_URL,
  DEFAULT_RELEASES_API_URL,
} from './install.js'
export type { InstallCloudflaredOptions, InstalledCloudflared } from './install.js'
export { findCloudflared, defaultInstallDir } from './find-binary.js'
export type { FindCloudflaredOptions, FoundCloudflared } from './find-binary.js'
export { killAllTrackedChildren, trackedChildCount } from './registry.js'
export { parseCloudflaredLine } from './log-parser.js'
export type { ParsedLine } from './log-parser.js'
export { CloudflareTunnelError, CloudflareTunnelErrorCode } from './errors.js'
export type { CloudflareTunnelErrorDetails } from './errors.js'
export type { TunnelBackend, OpenTunnel, TunnelTarget, TunnelLogger } from './types.js'
