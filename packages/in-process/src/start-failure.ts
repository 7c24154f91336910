/**
 * What `TASKAPP_ERR_START_FAILED` and the port-conflict log say, in this package's words. The
 * packages underneath name their own options (`onConflict: 'next'`, `install: true`, `apiKey`),
 * which an `InProcessTaskApp` user never passes; for those errors the message is rebuilt from the
 * facts the error carries, naming the options of `InProcessTaskApp` instead. Any other error keeps
 * its own message.
 */
import { messageOf } from '@taskapp/core'
import type { PortConflictEvent, PortOwner } from '@taskapp/port-manager'

const CLOUDFLARED_DOWNLOADS =
  'https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/'

/** The fields the errors underneath carry (read structurally: the tunnel packages are optional). */
interface CauseFacts {
  readonly code?: unknown
  readonly port?: number
  readonly host?: string
  readonly owner?: PortOwner
  readonly policy?: string
  readonly attempts?: number
  readonly installDir?: string
  readonly cloudflaredPath?: string
  readonly pathSource?: string
}

/**
 * A holder as a message shows it: `PID 4242 (node other.js)`, the command cut at 60 characters.
 *
 * @example
 * ```ts
 * describeOwner({ pid: 4242, command: 'node other.js' }) // 'PID 4242 (node other.js)'
 * ```
 */
export function describeOwner(owner: PortOwner | undefined): string {
  if (owner === undefined) return 'another process'
  const command = owner.command.length > 60 ? `${owner.command.slice(0, 59)}…` : owner.command
  return `PID ${owner.pid}${command ? ` (${command})` : ''}`
}

function portInUse(f: CauseFacts): string {
  const who = f.owner === undefined ? '' : ` by ${describeOwner(f.owner)}`
  const where = `Port ${f.port} on ${f.host}`
  if (f.policy === 'kill') {
    return `${where} is still in use${who} after onPortConflict: 'kill' stopped its holder. Stop it yourself, choose another port, or pass onPortConflict: 'next'.`
  }
  const kill = f.owner === undefined ? '' : ` (or onPortConflict: 'kill' to stop PID ${f.owner.pid} first)`
  return `${where} is already in use${who}. Choose another port, or pass onPortConflict: 'next' to bind the next free one${kill}.`
}

function cloudflaredMissing(f: CauseFacts, mode: string): string | undefined {
  if (f.installDir !== undefined) {
    return (
      `cloudflared was not found (looked at tunnel.cloudflaredPath, CLOUDFLARED_PATH, PATH and the install cache ${f.installDir}). ` +
      `Pass tunnel: { mode: '${mode}', install: true } to download a checksum-verified copy into that cache, ` +
      `or set CLOUDFLARED_PATH (or tunnel.cloudflaredPath) to the binary (downloads: ${CLOUDFLARED_DOWNLOADS}).`
    )
  }
  if (f.cloudflaredPath !== undefined && f.pathSource === 'option') {
    return (
      `cloudflared was not found at ${f.cloudflaredPath} (from tunnel.cloudflaredPath), or it is not an executable file. ` +
      'Fix the path, or leave tunnel.cloudflaredPath out to search CLOUDFLARED_PATH, PATH and the install cache.'
    )
  }
  return undefined
}

/**
 * What to do, in this package's words, for errors whose own advice names another package's
 * options; the first sentence of their message (what happened) is kept.
 */
const ADVICE: Readonly<Record<string, string>> = {
  TASKAPP_ERR_SYNTH_LEASE_REFUSED: 'Check the relay key: tunnel.relayApiKey, or SYNTH_API_KEY.',
  TASKAPP_ERR_SYNTH_BACKEND_UNREACHABLE: 'Check tunnel.relayUrl (or TASKAPP_RELAY_URL) and the network.',
  TASKAPP_ERR_SYNTH_LEASE_INVALID:
    'Check that tunnel.relayUrl (or TASKAPP_RELAY_URL) points at a SynthTunnel relay.',
  TASKAPP_ERR_INSTALL_DOWNLOAD:
    'Check the network (or tunnel.install.baseUrl), or install cloudflared yourself and set CLOUDFLARED_PATH.',
  TASKAPP_ERR_INSTALL_CHECKSUM:
    'Check tunnel.install (version, sha256, baseUrl), or install cloudflared yourself and set CLOUDFLARED_PATH.',
  TASKAPP_ERR_INSTALL_UNSUPPORTED:
    'Install it with your package manager and set CLOUDFLARED_PATH (or tunnel.cloudflaredPath).',
}

/**
 * The first sentence of a message: what happened, without the advice that follows.
 *
 * @example
 * ```ts
 * firstSentence('The relay refused the lease (HTTP 401). Check apiKey.') // 'The relay refused the lease (HTTP 401).'
 * ```
 */
export function firstSentence(message: string): string {
  const end = /[.!?](?=\s)/.exec(message)
  return end === null ? message : message.slice(0, end.index + 1)
}

/**
 * The message of `err` for an `InProcessTaskApp` user: errors that name another package's
 * options are reworded with this package's (`onPortConflict`, `tunnel: { install: true }`,
 * `tunnel.relayApiKey`); anything else keeps its own message.
 *
 * @example
 * ```ts
 * `Task app failed to start at step '${step}': ${describeCause(err, 'quick')}`
 * ```
 */
export function describeCause(err: unknown, mode: string): string {
  const f = (typeof err === 'object' && err !== null ? err : {}) as CauseFacts
  const code = typeof f.code === 'string' ? f.code : ''
  if (code === 'TASKAPP_ERR_PORT_IN_USE' && f.port !== undefined && f.host !== undefined) return portInUse(f)
  if (code === 'TASKAPP_ERR_NO_FREE_PORT' && f.port !== undefined && f.host !== undefined) {
    return `No free port found on ${f.host} after ${f.attempts ?? 'several'} attempts starting at ${f.port}. Choose another port, or pass port: 0 for any free port.`
  }
  if (code === 'TASKAPP_ERR_CLOUDFLARED_NOT_FOUND') return cloudflaredMissing(f, mode) ?? messageOf(err)
  if (code === 'TASKAPP_ERR_SYNTH_API_KEY_MISSING') {
    return "tunnel mode 'synthtunnel' needs a relay key: pass tunnel.relayApiKey (for a self-hosted relay, one of the keys it was started with) or set SYNTH_API_KEY."
  }
  const advice = ADVICE[code]
  return advice === undefined ? messageOf(err) : `${firstSentence(messageOf(err))} ${advice}`
}

/**
 * The log line for a port that was taken when the app bound: `port 8114 is taken by PID 4242
 * (node other.js): serving on 8115`, or `stopped PID 4242 (node other.js), which held port 8114`.
 *
 * @example
 * ```ts
 * portConflictMessage({ policy: 'next', port: 8114, host: '127.0.0.1', owner, boundPort: 8115 })
 * ```
 */
export function portConflictMessage(event: PortConflictEvent): string {
  if (event.policy === 'next') {
    return `port ${event.port} is taken by ${describeOwner(event.owner)}: serving on ${event.boundPort}`
  }
  if (event.owner === undefined) {
    return `port ${event.port} was taken; its holder was gone by the time it was looked for: serving on ${event.boundPort}`
  }
  return `stopped ${describeOwner(event.owner)}, which held port ${event.port}: serving on ${event.boundPort}`
}
