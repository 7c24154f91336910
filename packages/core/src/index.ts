/**
 * `@taskapp/core`: what every taskapp package shares. Imports nothing of ours and has no
 * dependencies.
 */
export { TaskappError, isTaskappError, messageOf } from './errors'
export type { TaskappErrorOptions } from './errors'
export { silentLogger, levelEnabled, safeLog } from './logger'
export type { Logger, LogLevel } from './logger'
export { redact } from './redact'
export type { OpenTunnel, TunnelBackend, TunnelTarget } from './tunnel'
