/**
 * Every flag of the `taskapp` CLI, one table per command, one entry per flag. An entry's key is
 * where its value goes: a field of the command (`port`), or a key of the `InProcessTaskApp`
 * tunnel spec (`tunnel.relayUrl`). `parseArgs`, the environment fallbacks and `--help` are
 * derived from these tables (see `flag-table.ts`); rules between flags live in `args.ts`.
 */
import { ENVIRONMENT_API_KEY_ENV_NAMES, RELAY_API_KEY_ENV_NAMES, RELAY_URL_ENV } from '@taskapp/core'
import type { TunnelSpec } from '@taskapp/in-process'
import type { CheckCommand, InitCommand, RelayCommand, ServeCommand } from './args'
import { list, option, toggle, type Flag } from './flag-table'

export * from './flag-parsers'
export { DEV_BACKEND_FLAGS, OPTIMIZE_FLAGS, OPTIMIZE_TUNNEL_MODES } from './job-flags'
import { DEV_BACKEND_FLAGS, OPTIMIZE_FLAGS } from './job-flags'
import {
  CONTAINER_AUTH_MODES,
  containerKeys,
  DEFAULTS,
  filePath,
  header,
  httpUrl,
  key,
  redisUrl,
  logLevelFlag,
  milliseconds,
  oneOf,
  port,
  PORT_CONFLICT_POLICIES,
  text,
  TUNNEL_MODES,
  VERBOSE,
  credentialHeader,
} from './flag-parsers'

// ---- the tables

/** A value of the tunnel spec's `key`, in whichever mode has that key. */
type SpecValue<K extends PropertyKey> = TunnelSpec extends infer S
  ? S extends unknown
    ? K extends keyof S
      ? S[K]
      : never
    : never
  : never
type SpecKey = TunnelSpec extends infer S ? (S extends unknown ? keyof S : never) : never

/** Targets a serve flag may write: the command's fields, the tunnel spec's keys, and `verbose`. */
type ServeTargets = {
  readonly [
    K in Exclude<keyof ServeCommand, 'command' | 'file' | 'tunnel' | 'apiKeyFrom' | 'containerAuthFrom'>
  ]: Flag<ServeCommand[K]>
} & { readonly [K in SpecKey as `tunnel.${K}`]?: Flag<SpecValue<K> | undefined> } & {
  readonly verbose?: Flag<boolean>
}

/**
 * The flags of `taskapp serve`, in help order. `tunnel.*` targets are keys of the
 * `InProcessTaskApp` tunnel spec; only the ones the chosen mode takes are kept.
 */
export const SERVE_FLAGS = {
  port: option({
    name: 'port',
    short: 'p',
    value: '<n>',
    help: 'port to bind, 1024-65535 or 0 for any (next free one if busy)',
    env: ['TASKAPP_PORT'],
    default: DEFAULTS.servePort,
    parse: port,
  }),
  host: option({
    name: 'host',
    value: '<host>',
    help: 'interface to bind; loopback only unless --allow-non-loopback',
    default: DEFAULTS.host,
    parse: key,
  }),
  allowNonLoopback: toggle({
    name: 'allow-non-loopback',
    help: 'allow a --host that is not loopback (e.g. 0.0.0.0)',
  }),
  'tunnel.mode': option({
    name: 'tunnel',
    short: 't',
    value: '<mode>',
    help: TUNNEL_MODES.join(' | '),
    env: ['TASKAPP_TUNNEL'],
    defaultHelp: 'synthtunnel when a relay URL is set, else local',
    parse: oneOf(TUNNEL_MODES),
  }),
  'tunnel.relayUrl': option({
    name: 'relay-url',
    value: '<url>',
    help:
      'relay (SynthTunnel backend) base URL, e.g. one started with `taskapp relay`; without one, ' +
      "Synth's: SYNTH_BACKEND_URL_OVERRIDE (local, dev, prod or a URL), then SYNTH_BACKEND_URL, else https://api.usesynth.ai",
    env: [RELAY_URL_ENV],
    defaultHelp: "Synth's hosted relay, with --tunnel synthtunnel and a key",
    parse: httpUrl,
  }),
  'tunnel.relayApiKey': option({
    name: 'relay-api-key',
    value: '<key>',
    help: "key for creating relay leases; for Synth's hosted relay only the flag (or its file) or SYNTH_API_KEY",
    env: RELAY_API_KEY_ENV_NAMES.selfHosted,
    parse: text,
    secret: true,
  }),
  apiKey: option({
    name: 'api-key',
    value: '<key>',
    help: "the task app's own API key (X-API-Key)",
    env: ENVIRONMENT_API_KEY_ENV_NAMES,
    defaultHelp: 'generated and printed',
    parse: text,
    secret: true,
  }),
  containerKeys: option({
    name: 'container-keys',
    value: '<keys>',
    help:
      'trusted Synth container public keys (kid:base64,...): verify the signed tokens of the newer ' +
      'Synth generation (X-Synth-Container-Authorization); the backend signs its own for each call',
    env: ['SYNTH_CONTAINER_TRUSTED_PUBKEYS'],
    defaultHelp: 'none: no token check',
    parse: containerKeys,
  }),
  containerAuthMode: option({
    name: 'container-auth',
    value: '<mode>',
    help: `${CONTAINER_AUTH_MODES.join(' | ')}; optional_local only with --tunnel local`,
    env: ['SYNTH_CONTAINER_AUTH_MODE'],
    defaultHelp: 'required when keys are set',
    parse: oneOf(CONTAINER_AUTH_MODES, (raw) => raw.trim().toLowerCase()),
  }),
  containerIssuer: option({
    name: 'container-issuer',
    value: '<iss>',
    help: 'the iss claim container tokens must carry',
    env: ['SYNTH_CONTAINER_AUTH_ISSUER'],
    defaultHelp: 'synth-backend',
    parse: key,
  }),
  'tunnel.url': option({
    name: 'public-url',
    value: '<url>',
    help: 'the URL for --tunnel preconfigured',
    env: ['TASKAPP_URL', 'SYNTH_TASK_APP_URL', 'SYNTH_CONTAINER_URL'],
    parse: httpUrl,
  }),
  'tunnel.token': option({
    name: 'cloudflare-token',
    value: '<t>',
    help: 'named tunnel token',
    env: ['CLOUDFLARE_TUNNEL_TOKEN'],
    parse: text,
    secret: true,
  }),
  'tunnel.hostname': option({
    name: 'hostname',
    value: '<host>',
    help: 'named tunnel hostname',
    env: ['CLOUDFLARE_TUNNEL_HOSTNAME'],
    parse: text,
  }),
  'tunnel.install': toggle({
    name: 'install-cloudflared',
    help: 'quick/named: download cloudflared (checksum-verified) if CLOUDFLARED_PATH, PATH and the cache have none',
  }),
  onPortConflict: option({
    name: 'on-port-conflict',
    value: '<p>',
    help: PORT_CONFLICT_POLICIES.join(' | '),
    default: 'next',
    parse: oneOf(PORT_CONFLICT_POLICIES),
  }),
  verifyTunnel: toggle({
    name: 'verify-tunnel',
    help: 'probe /health through the public URL before reporting ready',
  }),
  json: toggle({ name: 'json', help: 'print one JSON line {url, localUrl, port, tunnel, headers}' }),
  logLevel: logLevelFlag('warn', '; progress lines show unless error/silent'),
  verbose: VERBOSE,
} as const satisfies ServeTargets

/** The flags of `taskapp check`, in help order. */
export const CHECK_FLAGS = {
  apiKey: option({
    name: 'api-key',
    value: '<key>',
    help: "the task app's API key",
    env: ENVIRONMENT_API_KEY_ENV_NAMES,
    parse: text,
    secret: true,
  }),
  headers: list({
    name: 'header',
    short: 'H',
    value: '<"N: v">',
    help: 'extra header; one that carries a credential (the relay worker token, Authorization) goes in --header-file',
    parse: header,
    secret: credentialHeader,
    collect: (entries): Readonly<Record<string, string>> => Object.fromEntries(entries),
  }),
  timeoutMs: option({
    name: 'timeout',
    value: '<ms>',
    help: 'deadline',
    default: DEFAULTS.checkTimeoutMs,
    parse: milliseconds,
  }),
  wait: toggle({ name: 'wait', help: 'wait until healthy (up to --timeout) instead of probing once' }),
  json: toggle({ name: 'json', help: 'print the result as one JSON line' }),
} as const satisfies {
  readonly [K in Exclude<keyof CheckCommand, 'command' | 'url'>]: Flag<CheckCommand[K]>
}

/** The flags of `taskapp relay`, in help order. */
export const RELAY_FLAGS = {
  port: option({
    name: 'port',
    short: 'p',
    value: '<n>',
    help: 'port to bind, 0 for any free one',
    env: ['TASKAPP_RELAY_PORT'],
    default: DEFAULTS.relayPort,
    parse: port,
  }),
  host: option({
    name: 'host',
    value: '<host>',
    help: 'interface to bind; loopback only unless --allow-non-loopback',
    env: ['TASKAPP_RELAY_HOST'],
    default: DEFAULTS.host,
    parse: key,
  }),
  allowNonLoopback: toggle({
    name: 'allow-non-loopback',
    help: 'allow a --host that is not loopback (e.g. 0.0.0.0 behind a proxy)',
  }),
  publicUrl: option({
    name: 'public-url',
    value: '<url>',
    help: 'base URL callers use (behind a proxy / TLS terminator)',
    env: ['TASKAPP_RELAY_PUBLIC_BASE_URL'],
    defaultHelp: 'http://<host>:<port>',
    parse: httpUrl,
  }),
  apiKeys: list({
    name: 'api-key',
    value: '<key>',
    help: 'key allowed to create leases; if none is given, one is generated and printed once',
    env: ['TASKAPP_RELAY_API_KEYS'],
    parse: key,
    secret: true,
  }),
  leaseFile: option({
    name: 'lease-file',
    value: '<path>',
    help:
      'keep leases in this file and <path>.journal (mode 0600) so a restarted relay keeps its tunnels: agents ' +
      'reconnect to the same URLs. Pair it with --api-key-file so keys survive too.',
    env: ['TASKAPP_RELAY_LEASE_FILE'],
    defaultHelp: 'in memory, lost on restart',
    parse: filePath,
  }),
  adminKey: option({
    name: 'admin-key',
    value: '<key>',
    help: 'key (16+ characters) that opens the status page at /admin and /metrics on the main port',
    env: ['TASKAPP_RELAY_ADMIN_KEY'],
    defaultHelp: 'none: /admin and /metrics answer 404 (TASKAPP_RELAY_ADMIN_KEY_FILE names a file instead)',
    parse: key,
    secret: true,
  }),
  adminPort: option({
    name: 'admin-port',
    value: '<n>',
    help: 'a second port for /metrics (no key needed on loopback), /livez, /readyz and /admin',
    env: ['TASKAPP_RELAY_ADMIN_PORT'],
    defaultHelp: 'none',
    parse: port,
  }),
  adminHost: option({
    name: 'admin-host',
    value: '<host>',
    help: 'interface of --admin-port; not loopback needs --allow-non-loopback and an admin key',
    env: ['TASKAPP_RELAY_ADMIN_HOST'],
    default: DEFAULTS.host,
    parse: key,
  }),
  redisUrl: option({
    name: 'redis-url',
    value: '<url>',
    help:
      'run as one node of a relay cluster sharing leases and agent presence through this Redis ' +
      '(redis://, rediss://, unix:///path); needs the cluster secret',
    env: ['TASKAPP_RELAY_REDIS_URL'],
    defaultHelp: 'a single relay',
    parse: redisUrl,
    secret: (raw) => /\/\/[^/@]*@/.test(raw), // a URL with a password in it
  }),
  advertiseUrl: option({
    name: 'advertise-url',
    value: '<url>',
    help: 'URL the other cluster nodes reach this node on (with --redis-url)',
    env: ['TASKAPP_RELAY_ADVERTISE_URL'],
    defaultHelp: 'http://<host>:<port>',
    parse: httpUrl,
  }),
  clusterSecretFile: option({
    name: 'cluster-secret-file',
    value: '<path>',
    help:
      'file holding the secret shared by all cluster nodes (16+ characters; or TASKAPP_RELAY_CLUSTER_SECRET); ' +
      'hops between nodes are signed with it',
    env: ['TASKAPP_RELAY_CLUSTER_SECRET_FILE'],
    parse: filePath,
  }),
  nodeId: option({
    name: 'node-id',
    value: '<id>',
    help: "this node's name in the cluster (letters, digits, . _ : -)",
    env: ['TASKAPP_RELAY_NODE_ID'],
    defaultHelp: 'random',
    parse: key,
  }),
  logLevel: logLevelFlag('info', '; debug logs one line per request'),
  verbose: VERBOSE,
} as const satisfies {
  readonly [K in Exclude<keyof RelayCommand, 'command' | 'clusterSecret'>]: Flag<RelayCommand[K]>
} & { readonly verbose: Flag<boolean> }

/** The flags of `taskapp init`. */
export const INIT_FLAGS = {
  force: toggle({
    name: 'force',
    help: "write into a non-empty directory: the starter's files replace files of the same name, others stay",
  }),
} as const satisfies {
  readonly [K in Exclude<keyof InitCommand, 'command' | 'dir'>]: Flag<InitCommand[K]>
}

/** Every command's flag table. */
export const FLAG_TABLES = {
  serve: SERVE_FLAGS,
  check: CHECK_FLAGS,
  relay: RELAY_FLAGS,
  init: INIT_FLAGS,
  optimize: OPTIMIZE_FLAGS,
  'dev-backend': DEV_BACKEND_FLAGS,
} as const
