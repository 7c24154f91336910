/**
 * `@taskapp/core`: what every taskapp package shares. Imports nothing of ours and has no
 * dependencies.
 */
export { TaskappError, isTaskappError, messageOf, CoreError, CoreErrorCode } from './errors'
export type { TaskappErrorOptions } from './errors'
export { silentLogger, levelEnabled, safeLog } from './logger'
export type { Logger, LogLevel } from './logger'
export { redact } from './redact'
export { errorFields, errorStack } from './log-errors'
export {
  environmentApiKey,
  environmentApiKeys,
  relayApiKeyFromEnv,
  ENVIRONMENT_API_KEY_ENV_NAMES,
  ENVIRONMENT_API_KEY_ALIASES_ENV,
  RELAY_API_KEY_ENV_NAMES,
  RELAY_URL_ENV,
} from './environment'
export type { Env } from './environment'
export type { OpenTunnel, TunnelBackend, TunnelTarget } from './tunnel'
export {
  resolveSynthBackendUrl,
  SYNTH_BACKEND_ENV_NAMES,
  SYNTH_DEV_BACKEND_URL,
  SYNTH_LOCAL_BACKEND_URL,
  SYNTH_PROD_BACKEND_URL,
} from './synth-backend'
export type { ResolveSynthBackendOptions, ResolvedSynthBackend, SynthBackendSource } from './synth-backend'
