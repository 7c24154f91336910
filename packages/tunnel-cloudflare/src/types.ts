/**
 * The structural `TunnelBackend` contract shared with `@taskapp/in-process`. It is declared
 * here again (same shape) so this package needs no dependency on `in-process`.
 */

import type { Logger } from '@taskapp/core'

export type { OpenTunnel, TunnelBackend, TunnelTarget } from '@taskapp/core'

/**
 * A pino-compatible logger (`@taskapp/core`'s `Logger`).
 * @deprecated Use `Logger` from `@taskapp/core` (same shape); this alias goes in the next minor.
 */
export type TunnelLogger = Logger
