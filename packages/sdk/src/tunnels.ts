/**
 * Every tunnel, registered: the sdk depends on both tunnel packages, so `InProcessTaskApp`'s
 * lazy imports for `tunnel: { mode: 'synthtunnel' | 'quick' | 'named' }` always resolve for an sdk
 * user, and {@link createTunnel} builds any backend by mode name.
 */
import type { TunnelBackend } from '@taskapp/core'
import {
  cloudflareNamedTunnel,
  cloudflareQuickTunnel,
  type CloudflareNamedTunnelOptions,
  type CloudflareTunnelOptions,
} from '@taskapp/tunnel-cloudflare'
import { synthTunnel, type SynthTunnelOptions } from '@taskapp/tunnel-synth'
import { SdkError } from './errors'

/**
 * What {@link createTunnel} takes: a mode and that backend's own options (for
 * `InProcessTaskApp`'s `tunnel` option, a `TunnelSpec` is simpler: it is built for you).
 */
export type TunnelBackendSpec =
  | ({ mode: 'synthtunnel' } & SynthTunnelOptions)
  | ({ mode: 'quick' } & CloudflareTunnelOptions)
  | ({ mode: 'named' } & CloudflareNamedTunnelOptions)

/** The modes {@link createTunnel} builds (`local` and `preconfigured` need no backend). */
export const TUNNEL_BACKEND_MODES = ['synthtunnel', 'quick', 'named'] as const

/**
 * Builds a tunnel backend by mode name: `synthtunnel` → `synthTunnel()` (relay tunnel),
 * `quick` → `cloudflareQuickTunnel()`, `named` → `cloudflareNamedTunnel()`. Pass the result as
 * `InProcessTaskApp`'s `tunnel` option. Throws `TASKAPP_ERR_UNKNOWN_TUNNEL_MODE` for an unknown mode.
 *
 * @example
 * ```ts
 * import { InProcessTaskApp, createTunnel } from '@taskapp/sdk'
 *
 * const tunnel = createTunnel({ mode: 'synthtunnel', backendUrl: 'http://127.0.0.1:8787', apiKey: relayKey })
 * await using app = await InProcessTaskApp.start({ configFactory: buildConfig, tunnel })
 * ```
 */
export function createTunnel(spec: TunnelBackendSpec): TunnelBackend {
  const { mode, ...options } = spec
  switch (mode) {
    case 'synthtunnel':
      return synthTunnel(options)
    case 'quick':
      return cloudflareQuickTunnel(options)
    case 'named':
      return cloudflareNamedTunnel(options as CloudflareNamedTunnelOptions)
    default:
      throw new SdkError(
        'TASKAPP_ERR_UNKNOWN_TUNNEL_MODE',
        `createTunnel: unknown mode ${JSON.stringify(mode)}; use one of ${TUNNEL_BACKEND_MODES.join(', ')} (local and preconfigured need no backend: pass InProcessTaskApp's tunnel: { mode }).`,
      )
  }
}
