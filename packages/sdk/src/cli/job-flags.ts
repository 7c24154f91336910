/**
 * The flags of the job commands, `taskapp optimize` and `taskapp dev-backend`, one entry per flag
 * (see `flags.ts` for how the tables are used).
 */
import type { TunnelMode } from '@taskapp/in-process'
import type { DevBackendCommand, OptimizeCommand } from './job-args'
import { list, option, toggle, type Flag, type FlagParser } from './flag-table'
import {
  containerKeys,
  DEFAULTS,
  filePath,
  httpUrl,
  key,
  logLevelFlag,
  milliseconds,
  oneOf,
  port,
  text,
  VERBOSE,
} from './flag-parsers'

// ---- the job commands: taskapp optimize, taskapp dev-backend

/** Tunnels `taskapp optimize --tunnel` accepts. */
export const OPTIMIZE_TUNNEL_MODES = [
  'local',
  'synthtunnel',
  'quick',
] as const satisfies readonly TunnelMode[]

/** A task app file: `.ts`, `.mts`, `.js` or `.mjs`. */
const taskAppFile: FlagParser<string> = (raw, ctx) => {
  if (!/\.(?:ts|mts|js|mjs)$/.test(raw))
    throw ctx.fail(`must be a .ts, .mts, .js or .mjs file, got "${raw}".`)
  return raw
}

/** A dot-notation override, `key=value`; the value is read as JSON when it parses, else as text. */
const override: FlagParser<readonly [string, unknown]> = (raw, ctx) => {
  const eq = raw.indexOf('=')
  const name = eq > 0 ? raw.slice(0, eq).trim() : ''
  if (!/^[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*$/.test(name)) {
    throw ctx.fail(`must look like "prompt_learning.gepa.rollout.budget=200" (key=value), got "${raw}".`)
  }
  const text = raw.slice(eq + 1)
  try {
    return [name, JSON.parse(text) as unknown]
  } catch {
    return [name, text]
  }
}

/** The flags of `taskapp optimize`, in help order. */
export const OPTIMIZE_FLAGS = {
  app: option({
    name: 'app',
    short: 'a',
    value: '<file>',
    help: 'the task app file (.ts, .mts, .js, .mjs exporting default, app, buildConfig or config); required',
    parse: taskAppFile,
  }),
  backendUrl: option({
    name: 'backend',
    short: 'b',
    value: '<url>',
    help:
      'job backend base URL, e.g. one started with `taskapp dev-backend`; unset: SYNTH_BACKEND_URL_OVERRIDE ' +
      '(local, dev, prod or a URL), then SYNTH_BACKEND_URL',
    defaultHelp: 'https://api.usesynth.ai',
    parse: httpUrl,
  }),
  backendApiKey: option({
    name: 'backend-api-key',
    value: '<key>',
    help: 'the Synth API key the backend wants (never sent to the task app)',
    env: ['SYNTH_API_KEY'],
    parse: key,
    secret: true,
  }),
  tunnelMode: option({
    name: 'tunnel',
    short: 't',
    value: '<mode>',
    help: OPTIMIZE_TUNNEL_MODES.join(' | '),
    defaultHelp:
      'synthtunnel with a relay URL; else local for a backend on this machine, else synthtunnel on the backend',
    parse: oneOf(OPTIMIZE_TUNNEL_MODES),
  }),
  relayUrl: option({
    name: 'relay-url',
    value: '<url>',
    help: 'a self-hosted relay (`taskapp relay`) for the synthtunnel tunnel',
    env: ['TASKAPP_RELAY_URL'],
    parse: httpUrl,
  }),
  relayApiKey: option({
    name: 'relay-api-key',
    value: '<key>',
    help: 'key for creating leases on that relay',
    env: ['TASKAPP_RELAY_API_KEY'],
    parse: key,
    secret: true,
  }),
  containerKeys: option({
    name: 'container-keys',
    value: '<keys>',
    help:
      "trust the backend's container-token key (kid:base64,...; `taskapp dev-backend` prints it): " +
      'the task app then needs no key from the job',
    env: ['SYNTH_CONTAINER_TRUSTED_PUBKEYS'],
    defaultHelp: 'none',
    parse: containerKeys,
  }),
  port: option({
    name: 'port',
    short: 'p',
    value: '<n>',
    help: 'task app port, 1024-65535 or 0 for any (next free one if busy)',
    env: ['TASKAPP_PORT'],
    default: DEFAULTS.servePort,
    parse: port,
  }),
  overrides: list({
    name: 'override',
    short: 'o',
    value: '<key=value>',
    help: 'override a job config key (dot notation; the value is read as JSON, else as text), e.g. prompt_learning.gepa.rollout.budget=200',
    parse: override,
    collect: (entries): Readonly<Record<string, unknown>> => Object.fromEntries(entries),
  }),
  timeoutMs: option({
    name: 'timeout',
    value: '<ms>',
    help: 'give up after this long: the job is cancelled and the task app stopped',
    default: 3_600_000,
    parse: milliseconds,
  }),
  json: toggle({ name: 'json', help: 'print one JSON event per line on stdout: progress, then the result' }),
  logLevel: logLevelFlag('warn', '; the progress view shows unless error/silent'),
  verbose: VERBOSE,
} as const satisfies {
  readonly [K in Exclude<keyof OptimizeCommand, 'command' | 'config' | 'app'>]-?: Flag<OptimizeCommand[K]>
} & { readonly app: Flag<string | undefined>; readonly verbose: Flag<boolean> }

/** The flags of `taskapp dev-backend`, in help order. */
export const DEV_BACKEND_FLAGS = {
  port: option({
    name: 'port',
    short: 'p',
    value: '<n>',
    help: 'port to bind, 0 for any free one (8000 is where SYNTH_BACKEND_URL_OVERRIDE=local points)',
    env: ['TASKAPP_DEV_BACKEND_PORT'],
    default: 8000,
    parse: port,
  }),
  host: option({
    name: 'host',
    value: '<host>',
    help: 'interface to bind',
    default: DEFAULTS.host,
    parse: text,
  }),
  allowNonLoopback: toggle({
    name: 'allow-non-loopback',
    help: 'allow a --host that is not loopback (e.g. 0.0.0.0)',
  }),
  deterministicModel: toggle({
    name: 'deterministic-model',
    help: 'answer the task app and the optimizer with the built-in deterministic model (offline, no weights)',
  }),
  upstreamUrl: option({
    name: 'upstream-url',
    value: '<url>',
    help: "an OpenAI-compatible base URL (…/v1): the task app's model calls and the reflections go there",
    env: ['TASKAPP_UPSTREAM_URL'],
    parse: httpUrl,
  }),
  upstreamApiKey: option({
    name: 'upstream-api-key',
    value: '<key>',
    help: 'key for --upstream-url (Authorization: Bearer)',
    env: ['TASKAPP_UPSTREAM_API_KEY'],
    parse: key,
    secret: true,
  }),
  upstreamModel: option({
    name: 'upstream-model',
    value: '<name>',
    help: 'force this model name on every upstream call',
    env: ['TASKAPP_UPSTREAM_MODEL'],
    parse: key,
  }),
  apiKeys: list({
    name: 'api-key',
    value: '<key>',
    help: 'key job clients must send (their SYNTH_API_KEY); if none is given, one is generated and printed once',
    env: ['SYNTH_API_KEY'],
    parse: key,
    secret: true,
  }),
  signingKeyFile: option({
    name: 'signing-key-file',
    value: '<path>',
    help:
      'sign container tokens with this Ed25519 private key (base64 of its 32-byte seed, as in ' +
      'SYNTH_CONTAINER_AUTH_PRIVATE_KEY, which is read when this flag is absent); the public key to trust is printed',
    parse: filePath,
  }),
  generateSigningKey: toggle({
    name: 'generate-signing-key',
    help: 'sign container tokens with a key pair made for this run; the public key to trust is printed',
  }),
  signingKeyId: option({
    name: 'signing-key-id',
    value: '<kid>',
    help: 'the kid of the signing key (in each token and in the printed trusted key)',
    parse: key,
  }),
  json: toggle({
    name: 'json',
    help: 'print one JSON line {url, model, apiKey (when generated), apiKeySource, signingKey, trustedKey}',
  }),
  logLevel: logLevelFlag('info'),
  verbose: VERBOSE,
} as const satisfies {
  readonly [
    K in Exclude<
      keyof DevBackendCommand,
      'command' | 'upstreamApiKeyFrom' | 'apiKeysFrom' | 'signingKey' | 'signingKeyFrom'
    >
  ]-?: Flag<DevBackendCommand[K]>
} & { readonly verbose: Flag<boolean> }
