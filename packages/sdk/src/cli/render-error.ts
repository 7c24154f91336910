/**
 * How the CLI words an error. The packages underneath carry their facts on their errors (`port`,
 * `owner`, `option`, `installDir`, `timeoutMs`, ...) and word their messages for a library caller
 * (`onConflict: 'next'`, `install: true`, `apiKey`); here the known codes are worded again from
 * those facts in the CLI's own terms (`--on-port-conflict next`, `--install-cloudflared`,
 * `--relay-api-key-file`). Anything else falls back to the library's message.
 */
import { resolve } from 'node:path'
import { isTaskappError, messageOf } from '@taskapp/core'
import type { CommandName, ServeCommand } from './args'
import type { FlagTable } from './flag-table'
import { SERVE_FLAGS } from './flags'

/** What the CLI prints for an error. */
export interface RenderedError {
  /** The message in the CLI's words (one line, no trailing newline). */
  readonly message: string
  /** The stable code of the error the message is about (a start failure's cause, not the wrapper). */
  readonly code: string | undefined
  /** A usage error: exit status 2, printed as `taskapp <command>: ...` with the pointer to `--help`. */
  readonly usage: boolean
  /** The cause's message, only when it says something `message` does not. */
  readonly cause: string | undefined
}

/** Where the error happened: the command, and for `serve` what it was asked. */
export interface RenderContext {
  readonly command: CommandName | undefined
  readonly serve?: ServeCommand
}

/** The facts the errors of the packages underneath carry (read structurally). */
interface Facts {
  readonly code?: unknown
  readonly message?: unknown
  readonly cause?: unknown
  readonly step?: string
  readonly option?: string
  readonly env?: readonly string[]
  readonly expected?: string
  readonly port?: number
  readonly host?: string
  readonly owner?: { readonly pid: number; readonly command: string }
  readonly policy?: string
  readonly attempts?: number
  readonly url?: string
  readonly timeoutMs?: number
  readonly last?: { readonly status?: number; readonly body?: string; readonly error?: string }
  readonly installDir?: string
  readonly cloudflaredPath?: string
  readonly pathSource?: string
}

/** A rule's result: the message, and whether it is bad usage (exit 2). */
type Worded = { readonly message: string; readonly usage?: boolean } | undefined
/** Words one code from its facts (`step`: the start step that failed, for a start failure). */
type Rule = (f: Facts, ctx: RenderContext, step: string | undefined) => Worded

const CLOUDFLARED_DOWNLOADS =
  'https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/'

/**
 * `--host 0.0.0.0 is not a loopback address ...`: the words of the loopback rule.
 *
 * @example
 * ```ts
 * nonLoopbackHost('0.0.0.0', 'the relay')
 * ```
 */
export function nonLoopbackHost(host: string, what: string): string {
  return (
    `--host ${host} is not a loopback address, so ${what} would be reachable from other machines: ` +
    'use 127.0.0.1 (the default), or add --allow-non-loopback if you mean to expose it.'
  )
}

/**
 * Why `--tunnel synthtunnel` cannot start without a key, and how to give one: for a relay URL,
 * that relay's key; without one, Synth's hosted relay and `SYNTH_API_KEY`.
 *
 * @example
 * ```ts
 * relayKeyNeeded(undefined, false) // '--tunnel synthtunnel needs a relay and its key: ...'
 * ```
 */
export function relayKeyNeeded(relayUrl: string | undefined, selfHostedKeyIgnored: boolean): string {
  if (relayUrl !== undefined) {
    return (
      `the relay at ${relayUrl} needs its key: --relay-api-key-file <path> or TASKAPP_RELAY_API_KEY ` +
      '(`taskapp relay` prints one when it starts).'
    )
  }
  return (
    "--tunnel synthtunnel needs a relay and its key: for Synth's hosted relay set SYNTH_API_KEY (or " +
    '--relay-api-key-file <path>); for your own relay add --relay-url <url> (or TASKAPP_RELAY_URL) with ' +
    '--relay-api-key-file <path> (or TASKAPP_RELAY_API_KEY). For no tunnel, use --tunnel local.' +
    (selfHostedKeyIgnored
      ? " TASKAPP_RELAY_API_KEY is a self-hosted relay's key and is never sent to Synth."
      : '')
  )
}

/** A holder as the CLI shows it: `PID 4242 (node other.js)`, the command cut at 60 characters. */
export function describeOwner(owner: Facts['owner']): string {
  if (owner === undefined) return 'another process'
  const command = owner.command.length > 60 ? `${owner.command.slice(0, 59)}…` : owner.command
  return `PID ${owner.pid}${command ? ` (${command})` : ''}`
}

/** The first sentence of a message: what happened, without the library's advice after it. */
function firstSentence(message: string): string {
  const end = /[.!?](?=\s)/.exec(message)
  return end === null ? message : message.slice(0, end.index + 1)
}

function lastSeen(last: Facts['last']): string {
  if (last?.status !== undefined)
    return `HTTP ${last.status}${last.body ? ` ${JSON.stringify(last.body)}` : ''}`
  return last?.error ?? 'no answer'
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? 'the deadline' : ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`
}

/** The flag a library option comes from (`tunnel.relayUrl` → `--relay-url`), if `serve` has one. */
function flagOf(option: string | undefined): string | undefined {
  if (option === 'taskAppPath') return 'the task app file'
  const flag = option === undefined ? undefined : (SERVE_FLAGS as FlagTable)[option]
  return flag === undefined ? undefined : `--${flag.name}`
}

function portInUse(f: Facts): Worded {
  if (f.port === undefined) return undefined
  const where = `port ${f.port}${f.host === undefined ? '' : ` on ${f.host}`}`
  if (f.policy === 'kill') {
    return {
      message: `${where} is still taken by ${describeOwner(f.owner)} after --on-port-conflict kill stopped its holder: stop it yourself, or choose another --port.`,
    }
  }
  const kill =
    f.owner === undefined ? ' or' : `, or --on-port-conflict kill to stop PID ${f.owner.pid} first, or`
  return {
    message: `${where} is taken by ${describeOwner(f.owner)}: choose another --port${kill} --on-port-conflict next to serve on the next free port.`,
  }
}

function healthTimeout(f: Facts, ctx: RenderContext, step: string | undefined): Worded {
  const within = `within ${seconds(f.timeoutMs)} (${f.attempts ?? '?'} probes; last: ${lastSeen(f.last)})`
  if (ctx.command === 'check') {
    return { message: `${f.url} did not answer healthy ${within}. If it is only slow, raise --timeout.` }
  }
  if (step === 'verify') {
    return {
      message: `the public URL did not answer healthy through the tunnel ${within}: it may not reach the app yet. Try again, or leave out --verify-tunnel.`,
    }
  }
  return {
    message:
      `the task app did not answer healthy at ${f.url} ${within}. Usual causes: no /health route, the API key header ` +
      '(X-API-Key) not accepted, or the app crashed while starting (-v shows its logs).',
  }
}

function cloudflaredMissing(f: Facts): Worded {
  if (f.installDir !== undefined) {
    return {
      message:
        `cloudflared was not found (looked at CLOUDFLARED_PATH, PATH and ${f.installDir}): add --install-cloudflared ` +
        `to download a checksum-verified copy into that cache, or set CLOUDFLARED_PATH to the binary (downloads: ${CLOUDFLARED_DOWNLOADS}).`,
    }
  }
  if (f.pathSource === 'env' && f.cloudflaredPath !== undefined) {
    return {
      message: `CLOUDFLARED_PATH=${f.cloudflaredPath} is not an executable file: fix it, or unset it to search PATH and the install cache.`,
    }
  }
  return undefined
}

/** CLI advice for errors whose own advice names library options; their first sentence is kept. */
const ADVICE: Readonly<Record<string, string>> = {
  TASKAPP_ERR_SYNTH_LEASE_REFUSED:
    "Check the relay key: --relay-api-key-file <path>, TASKAPP_RELAY_API_KEY for your relay, SYNTH_API_KEY for Synth's.",
  TASKAPP_ERR_SYNTH_BACKEND_UNREACHABLE: 'Check --relay-url (or TASKAPP_RELAY_URL) and the network.',
  TASKAPP_ERR_SYNTH_LEASE_INVALID:
    'Check that --relay-url (or TASKAPP_RELAY_URL) points at a SynthTunnel relay.',
  TASKAPP_ERR_INSTALL_DOWNLOAD:
    'Check the network, or install cloudflared yourself and set CLOUDFLARED_PATH (leave out --install-cloudflared).',
  TASKAPP_ERR_INSTALL_CHECKSUM:
    'Nothing was installed. Try again, or install cloudflared yourself and set CLOUDFLARED_PATH.',
  TASKAPP_ERR_INSTALL_UNSUPPORTED: 'Install it with your package manager and set CLOUDFLARED_PATH.',
}

const RULES: Readonly<Record<string, Rule>> = {
  TASKAPP_ERR_PORT_IN_USE: portInUse,
  TASKAPP_ERR_NO_FREE_PORT: (f) =>
    f.port === undefined
      ? undefined
      : {
          message: `no free port found from ${f.port}${f.host === undefined ? '' : ` on ${f.host}`} (${f.attempts ?? 'several'} tries): choose another --port, or --port 0 for any free port.`,
        },
  TASKAPP_ERR_HEALTH_TIMEOUT: healthTimeout,
  TASKAPP_ERR_HEALTH_UNAUTHORIZED: (f) => ({
    message: `${f.url} refused the API key (HTTP ${f.last?.status ?? '?'}): give the key the app expects with --api-key-file <path> or ENVIRONMENT_API_KEY.`,
  }),
  TASKAPP_ERR_CLOUDFLARED_NOT_FOUND: cloudflaredMissing,
  TASKAPP_ERR_SYNTH_API_KEY_MISSING: (_f, ctx) => ({
    message: relayKeyNeeded(
      ctx.serve?.tunnel.mode === 'synthtunnel' ? ctx.serve.tunnel.relayUrl : undefined,
      false,
    ),
    usage: true,
  }),
  TASKAPP_ERR_TASK_APP_NOT_FOUND: (f, ctx) => {
    if (ctx.serve === undefined) return undefined
    const { file } = ctx.serve
    const where = resolve(file) === file ? '' : ` (looked for ${resolve(file)})`
    const code = (f.cause as { code?: unknown } | undefined)?.code
    if (code === 'ENOENT') return { message: `the task app file ${file} does not exist${where}.` }
    if (f.cause === undefined) return { message: `the task app path ${file} is not a file${where}.` }
    return undefined
  },
}

/** An invalid option the CLI set from a flag: bad usage, named by its flag. */
function invalidOption(f: Facts, ctx: RenderContext): Worded {
  if (ctx.command !== 'serve' || f.option === undefined) return undefined
  if (f.code === 'TASKAPP_ERR_INVALID_HOST' && ctx.serve !== undefined && f.expected?.includes('loopback')) {
    return { message: nonLoopbackHost(ctx.serve.host, 'the task app'), usage: true }
  }
  const flag = flagOf(f.option)
  if (flag === undefined) return undefined
  const env = f.env !== undefined && f.env.length > 0 ? ` (or ${f.env.join(', ')})` : ''
  const detail = f.expected === undefined ? firstSentence(messageOf(f)) : `expected ${f.expected}.`
  return { message: `invalid ${flag}${env}: ${detail}`, usage: true }
}

/** What each start step was doing, for a failure no rule words. */
const STEP_WORDS: Readonly<Record<string, string>> = {
  bind: 'binding the port',
  health: 'waiting for /health',
  tunnel: 'opening the tunnel',
  verify: 'checking /health through the tunnel',
  onStart: 'onStart',
}

/** The cause's message, when `message` does not already say it. */
function causeLine(err: Facts, message: string): string | undefined {
  const cause = err.cause
  if (cause === undefined || cause === null) return undefined
  const text = messageOf(cause)
  return text === '' || message.includes(text) ? undefined : text
}

/** A rendered error as the CLI prints it: `message [code]`, then `  cause: ...` on its own line when known. */
export function formatRendered(rendered: RenderedError): string {
  const code = rendered.code === undefined ? '' : ` [${rendered.code}]`
  const cause = rendered.cause === undefined ? '' : `\n  cause: ${rendered.cause}`
  return `${rendered.message}${code}${cause}`
}

/**
 * Words `err` for the CLI: known codes from their facts, in flags and environment variables;
 * anything else with the library's message (and its cause, when that adds something). A start
 * failure (`TASKAPP_ERR_START_FAILED`) is worded by its cause.
 *
 * @example
 * ```ts
 * const { message, code, usage } = renderError(err, { command: 'serve', serve: cmd })
 * ```
 */
export function renderError(err: unknown, ctx: RenderContext): RenderedError {
  let f = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as Facts
  let step: string | undefined
  if (isTaskappError(err, 'TASKAPP_ERR_START_FAILED') && typeof f.cause === 'object' && f.cause !== null) {
    step = f.step
    f = f.cause
  }
  const code = typeof f.code === 'string' ? f.code : undefined
  const worded =
    (code === undefined ? undefined : RULES[code]?.(f, ctx, step)) ??
    (code === undefined ? undefined : advised(f, code)) ??
    invalidOption(f, ctx)
  if (worded !== undefined) {
    return { message: worded.message, code, usage: worded.usage ?? false, cause: undefined }
  }
  const own = messageOf(f)
  const message = step === undefined ? own : `${STEP_WORDS[step] ?? step} failed: ${own}`
  return { message, code, usage: false, cause: causeLine(f, message) }
}

function advised(f: Facts, code: string): Worded {
  const advice = ADVICE[code]
  return advice === undefined ? undefined : { message: `${firstSentence(messageOf(f))} ${advice}` }
}
