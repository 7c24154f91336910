import type { Logger } from '@taskapp/core'

/**
 * A pino-compatible logger (`@taskapp/core`'s `Logger`). A pino logger fits as is.
 * @deprecated Use `Logger` from `@taskapp/core` (same shape); this alias goes in the next minor.
 */
export type TaskAppLogger = Logger

export { levelEnabled, safeLog, silentLogger } from '@taskapp/core'
