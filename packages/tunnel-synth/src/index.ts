/**
 * `@taskapp/tunnel-synth`: the SynthTunnel agent as a `TunnelBackend`. The relay server is the
 * subpath `@taskapp/tunnel-synth/relay`.
 * @packageDocumentation
 */
export { synthTunnel, localApiKeysFromEnv } from './synth-tunnel'
export type { SynthTunnelOptions, SynthOpenTunnel, SynthTunnelBackend } from './synth-tunnel'
export type { SynthTunnelEvent, SynthTunnelStats } from './agent/agent'
export { SynthTunnelError, SynthTunnelErrorCode } from './errors'
export type { Logger, OpenTunnel, TunnelBackend, TunnelTarget } from './types'
export {
  AGENT_DROPPED_REQUEST_HEADERS,
  HOP_BY_HOP_HEADERS,
  MAX_BODY_CHUNK_BYTES,
  RELAY_DROPPED_CALLER_HEADERS,
  RELAY_MARKER_HEADER,
  RELAY_MARKER_VALUE,
  WORKER_TOKEN_HEADER,
  parseAgentFrame,
  parseRelayFrame,
} from './protocol/frames'
export type { AgentFrame, RelayFrame, HeaderPairs } from './protocol/frames'
