/**
 * The tunnel contract and logger, from `@taskapp/core` (one declaration for every package).
 */
import { levelEnabled, type Logger } from '@taskapp/core'

export type { Logger, OpenTunnel, TunnelBackend, TunnelTarget } from '@taskapp/core'
export { redact, safeLog, silentLogger } from '@taskapp/core'

/** Whether `logger` wants debug lines (so hot paths can skip building them). */
export function debugEnabled(logger: Logger): boolean {
  return levelEnabled(logger, 'debug')
}
