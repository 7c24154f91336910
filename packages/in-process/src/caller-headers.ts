/**
 * What a caller of `app.url` must send: the tunnel's headers, plus the app's API key in
 * `X-API-Key` unless the tunnel puts the key in for it. One rule for every mode, so
 * `app.headers` is exactly enough (a signed container token aside, which no caller is handed).
 */
import type { ResolvedApp } from './load'

/** The header the app's API key goes in (the task server also reads `X-API-Keys` and `Authorization: Bearer`; the relay strips `Authorization`). */
export const API_KEY_HEADER = 'X-API-Key'

/** What the header rule needs to know about the app. */
export type KeyFacts = Pick<ResolvedApp, 'apiKey' | 'containerAuth' | 'callerNeedsKey'>

/**
 * True when the tunnel of `mode` adds the app's API key to every request it forwards: the
 * SynthTunnel agent does (older generation), unless the app verifies container tokens (then the
 * worker token alone must not get a caller in). No other mode touches the key; a custom backend
 * may, but cannot say so, so it is treated as not adding it.
 */
export function tunnelAddsApiKey(mode: string, app: Pick<ResolvedApp, 'apiKey' | 'containerAuth'>): boolean {
  return mode === 'synthtunnel' && app.apiKey !== undefined && !app.containerAuth
}

/**
 * The headers a caller of the public URL needs: the tunnel's own (the relay worker token, the
 * preconfigured auth header), then `X-API-Key: <apiKey>` when the app wants a key from its
 * callers and the tunnel does not add it. A tunnel header of the same name (any case) wins.
 *
 * @example
 * ```ts
 * callerHeaders('local', { apiKey: 'tk_1', containerAuth: false, callerNeedsKey: true }, undefined)
 * // { 'X-API-Key': 'tk_1' }
 * ```
 */
export function callerHeaders(
  mode: string,
  app: KeyFacts,
  tunnelHeaders: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const headers: Record<string, string> = { ...tunnelHeaders }
  const taken = new Set(Object.keys(headers).map((name) => name.toLowerCase()))
  if (
    app.apiKey !== undefined &&
    app.callerNeedsKey &&
    !tunnelAddsApiKey(mode, app) &&
    !taken.has(API_KEY_HEADER.toLowerCase())
  ) {
    headers[API_KEY_HEADER] = app.apiKey
  }
  return headers
}
