/** Help texts of the `taskapp` CLI (`--help` of each command). */
import type { CommandName } from './args.js'
import { DEFAULTS } from './args.js'

const MAIN = `taskapp: run a task app with a public URL, check one, or host a relay.

Usage:
  taskapp serve <file> [options]   start a task app file and open a tunnel to it
  taskapp check <url> [options]    probe a task app's /health and /info
  taskapp relay [options]          run a self-hosted SynthTunnel relay server
  taskapp help <command>           help for one command
  taskapp --version                print the version

Exit status: 0 ok, 1 failure (start failed, app unhealthy), 2 bad usage,
130/143 stopped by SIGINT/SIGTERM.`

const SERVE = `Usage: taskapp serve <file> [options]

Start the task app in <file> (.ts, .mts, .js or .mjs exporting \`default\`, \`app\`,
\`buildConfig\` or \`config\`), open a tunnel, print its URL and the headers a caller
must send, and run until Ctrl+C (then stop cleanly: tunnel, then server).

Options:
  -p, --port <n>              port to bind, 1024-65535 or 0 for any (next free one if busy)
                              [default: ${DEFAULTS.servePort}; env TASKAPP_PORT]
      --host <host>           interface to bind [default: ${DEFAULTS.host}]
      --allow-non-loopback    allow a --host that is not loopback (e.g. 0.0.0.0)
  -t, --tunnel <mode>         local | quick | named | synthtunnel | preconfigured
                              [default: synthtunnel when a relay URL is set, else local;
                              env TASKAPP_TUNNEL]
      --relay-url <url>       relay (SynthTunnel backend) base URL, e.g. one started with
                              \`taskapp relay\` [env TASKAPP_RELAY_URL]
      --relay-api-key <key>   key for creating relay leases
                              [env TASKAPP_RELAY_API_KEY, then SYNTH_API_KEY]
      --api-key <key>         the task app's own API key (X-API-Key)
                              [env ENVIRONMENT_API_KEY]
      --public-url <url>      the URL for --tunnel preconfigured [env TASKAPP_URL]
      --cloudflare-token <t>  named tunnel token [env CLOUDFLARE_TUNNEL_TOKEN]
      --hostname <host>       named tunnel hostname [env CLOUDFLARE_TUNNEL_HOSTNAME]
      --on-port-conflict <p>  next | error | kill [default: next]
      --verify-tunnel         probe /health through the public URL before reporting ready
      --json                  print one JSON line {url, localUrl, port, headers} on stdout
      --log-level <level>     debug | info | warn | error | silent [default: warn;
                              env TASKAPP_LOG_LEVEL]; progress lines show unless error/silent
  -v, --verbose               same as --log-level debug
  -h, --help                  this help

Output: stdout gets the URL and headers (machine-readable with --json); progress and
logs go to stderr. Secrets in logs are shortened to a prefix; the relay worker token is
printed in full on stdout once, because a caller cannot reach the app without it.

Examples:
  taskapp serve ./task-app.ts
  taskapp serve ./task-app.ts --relay-url http://127.0.0.1:${DEFAULTS.relayPort} --relay-api-key dev-key
  taskapp serve ./task-app.ts --tunnel quick --port 9000`

const CHECK = `Usage: taskapp check <url> [options]

Probe a task app: GET <url>/health (must answer 200), then GET <url>/info. Prints
the result; exits 0 when healthy, 1 when not.

Options:
      --api-key <key>         the task app's API key [env ENVIRONMENT_API_KEY]
  -H, --header <"N: v">       extra header, repeatable (e.g. the relay worker token:
                              -H "X-SynthTunnel-Worker-Token: <token>")
      --timeout <ms>          deadline [default: ${DEFAULTS.checkTimeoutMs}]
      --wait                  wait until healthy (up to --timeout) instead of probing once
      --json                  print the result as one JSON line
  -h, --help                  this help

Example:
  taskapp check http://127.0.0.1:8114 --api-key "$ENVIRONMENT_API_KEY"`

const RELAY = `Usage: taskapp relay [options]

Run a self-hosted SynthTunnel relay: task apps (\`taskapp serve --relay-url ...\`) open
leases on it, callers reach them at <public-url>/s/<route_token>. Stops on Ctrl+C.

Options:
  -p, --port <n>              port to bind, 0 for any free one
                              [default: ${DEFAULTS.relayPort}; env TASKAPP_RELAY_PORT]
      --host <host>           interface to bind [default: ${DEFAULTS.host}; env TASKAPP_RELAY_HOST]
      --allow-non-loopback    allow a --host that is not loopback (e.g. 0.0.0.0 behind a proxy)
      --public-url <url>      base URL callers use (behind a proxy / TLS terminator)
                              [default: http://<host>:<port>; env TASKAPP_RELAY_PUBLIC_BASE_URL]
      --api-key <key>         key allowed to create leases, repeatable
                              [env TASKAPP_RELAY_API_KEYS, comma-separated; if none is
                              given, one is generated and printed once]
      --lease-file <path>     keep leases in this JSON file (mode 0600) so a restarted
                              relay keeps its tunnels: agents reconnect to the same URLs
                              [env TASKAPP_RELAY_LEASE_FILE; default: in memory, lost on
                              restart]. Pair it with --api-key so keys survive too.
      --log-level <level>     debug (one line per request) | info | warn | error | silent
                              [default: info; env TASKAPP_LOG_LEVEL]
  -v, --verbose               same as --log-level debug
  -h, --help                  this help

Routes: GET /health (relay liveness), the lease API under /api/v1/synthtunnel/leases,
the agent WebSocket, and public traffic under /s/<route_token>/...`

/**
 * The help text of a command, or of the CLI as a whole.
 *
 * @example
 * ```ts
 * process.stdout.write(helpText('serve'))
 * ```
 */
export function helpText(topic?: CommandName): string {
  switch (topic) {
    case 'serve':
      return `${SERVE}\n`
    case 'check':
      return `${CHECK}\n`
    case 'relay':
      return `${RELAY}\n`
    default:
      return `${MAIN}\n`
  }
}
