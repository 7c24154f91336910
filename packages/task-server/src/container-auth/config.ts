/**
 * The `containerAuth` part of a task-app config (newer Synth generation's signed tokens).
 */
import type { TrustedContainerKeyInput } from './keys'

/**
 * How container tokens are checked: `required` (the default when trusted keys are configured),
 * `optional_local` (also lets unsigned calls from a loopback socket through) or `disabled` (no
 * token check; API-key auth stays as configured).
 */
export type ContainerAuthMode = 'required' | 'optional_local' | 'disabled'

/** The container-auth modes, for validation. */
export const CONTAINER_AUTH_MODES: readonly ContainerAuthMode[] = ['required', 'optional_local', 'disabled']

/**
 * Container tokens of the newer Synth generation (`X-Synth-Container-Authorization`). Every field
 * falls back to its environment variable, read once by `createTaskApp`; the config wins.
 *
 * @example
 * ```ts
 * const containerAuth: ContainerAuthConfig = { trustedKeys: 'k1:BASE64_PUBLIC_KEY', mode: 'required' }
 * ```
 */
export interface ContainerAuthConfig {
  /**
   * Trusted Ed25519 public keys: `SYNTH_CONTAINER_TRUSTED_PUBKEYS` text (`kid:base64,base64,...`)
   * or an array of such strings, `KeyObject`s and `{ kid?, key }` (see `parseTrustedContainerKeys`).
   * @default SYNTH_CONTAINER_TRUSTED_PUBKEYS (unset or blank: no token check)
   */
  trustedKeys?: string | readonly TrustedContainerKeyInput[]
  /**
   * @default SYNTH_CONTAINER_AUTH_MODE, else 'required'
   */
  mode?: ContainerAuthMode
  /**
   * Expected `iss`.
   * @default SYNTH_CONTAINER_AUTH_ISSUER, else 'synth-backend'
   */
  issuer?: string
  /**
   * Expected `aud`.
   * @default 'synth-container'
   */
  audience?: string
  /**
   * Clock skew allowed on `exp`, `nbf` and `iat`, in milliseconds.
   * @default 30000
   */
  clockToleranceMs?: number
}
