export { InProcessTaskApp } from './in-process-task-app'
export type { InProcessTaskAppEvents, TunnelLostEvent } from './app-parts'
export type { PortConflictEvent } from '@taskapp/port-manager'
export { InProcessError, InProcessErrorCode } from './errors'
export type { InProcessErrorDetails, StartStep } from './errors'
export { TUNNEL_MODES, TUNNEL_SPEC_KEYS, FLAT_TUNNEL_OPTIONS_WARNING } from './tunnel-spec'
export type { CloudflaredInstallSpec, TunnelSpec, TunnelMode } from './tunnel-spec'
export { OPTION_KEYS } from './option-types'
export type {
  AppLifecycle,
  AppLike,
  InProcessTaskAppOptions,
  PortConflictPolicy,
  RequestListener,
  InProcessTaskAppState,
  TaskAppState,
} from './option-types'
export type { OpenTunnel, TunnelBackend, TunnelTarget } from './tunnel'
export { defaultLogger, redact } from './logger'
export type { Logger } from './logger'
export type { TaskAppConfig, TaskAppStats } from '@taskapp/task-server'
