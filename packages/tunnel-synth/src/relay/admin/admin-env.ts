/** The admin options from the environment (read by `relayOptionsFromEnv`). */
import { readFileSync } from 'node:fs'
import { SynthTunnelError, SynthTunnelErrorCode } from '../../errors'
import type { RelayAdminOptions } from './admin-options'

type Env = Readonly<Record<string, string | undefined>>

function invalid(message: string, cause?: unknown): SynthTunnelError {
  return new SynthTunnelError(
    SynthTunnelErrorCode.RelayInvalidOptions,
    message,
    cause === undefined ? {} : { cause },
  )
}

/** The admin key of `TASKAPP_RELAY_ADMIN_KEY`, or of the file `TASKAPP_RELAY_ADMIN_KEY_FILE` names. */
function adminKey(env: Env): string | undefined {
  const value = env.TASKAPP_RELAY_ADMIN_KEY?.trim()
  const file = env.TASKAPP_RELAY_ADMIN_KEY_FILE?.trim()
  if (value && file) throw invalid('Set TASKAPP_RELAY_ADMIN_KEY or TASKAPP_RELAY_ADMIN_KEY_FILE, not both.')
  if (!file) return value || undefined
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw invalid(
      `TASKAPP_RELAY_ADMIN_KEY_FILE: ${file} cannot be read; write the admin key to it (chmod 600).`,
      err,
    )
  }
  const key = text.replace(/\r?\n$/, '')
  if (!key.trim() || /[\r\n]/.test(key)) {
    throw invalid(`TASKAPP_RELAY_ADMIN_KEY_FILE: ${file} must hold the admin key alone, on one line.`)
  }
  return key
}

/**
 * `adminKey`, `adminPort` and `adminHost` from `TASKAPP_RELAY_ADMIN_KEY` (or `..._KEY_FILE`),
 * `TASKAPP_RELAY_ADMIN_PORT` and `TASKAPP_RELAY_ADMIN_HOST`.
 * @example
 * ```ts
 * const admin = adminOptionsFromEnv({ TASKAPP_RELAY_ADMIN_PORT: '9464' }) // { adminPort: 9464 }
 * ```
 */
export function adminOptionsFromEnv(env: Env): RelayAdminOptions {
  const out: RelayAdminOptions = {}
  const key = adminKey(env)
  if (key !== undefined) out.adminKey = key
  const port = env.TASKAPP_RELAY_ADMIN_PORT?.trim()
  if (port) {
    if (!/^\d+$/.test(port) || Number(port) > 65535) {
      throw invalid(`TASKAPP_RELAY_ADMIN_PORT must be a port 0..65535, got "${port}".`)
    }
    out.adminPort = Number(port)
  }
  const host = env.TASKAPP_RELAY_ADMIN_HOST?.trim()
  if (host) out.adminHost = host
  return out
}
