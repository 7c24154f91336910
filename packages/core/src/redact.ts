/**
 * A secret reduced to a short prefix for logs and messages: `sk_l…`. Never log a key in full.
 * Secrets of 8 characters or fewer show nothing but `…`; nothing given shows `<unset>`.
 *
 * @example
 * ```ts
 * redact('sk_live_1234567890') // 'sk_l…'
 * redact('short') // '…'
 * ```
 */
export function redact(secret: string | undefined): string {
  if (!secret) return '<unset>'
  if (secret.length <= 8) return '…'
  return `${secret.slice(0, 4)}…`
}
