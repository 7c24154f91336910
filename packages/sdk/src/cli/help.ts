/**
 * Help texts of the `taskapp` CLI (`--help` of each command). The Options sections are generated
 * from the flag tables in `flags.ts`; only the prose around them is written here.
 */
import type { CommandName } from './args'
import { formatFlags } from './flag-parse'
import { CHECK_FLAGS, DEFAULTS, INIT_FLAGS, RELAY_FLAGS, SERVE_FLAGS } from './flags'
import { DEV_BACKEND_HELP, OPTIMIZE_HELP } from './job-help'

const MAIN = `taskapp: run a task app with a public URL, check one, host a relay, or optimize a prompt on it.

Usage:
  taskapp serve <file> [options]   start a task app file and open a tunnel to it
  taskapp check <url> [options]    probe a task app's /health and /info
  taskapp relay [options]          run a self-hosted SynthTunnel relay server
  taskapp init [dir] [--force]     write a starter task app project into dir (default .)
  taskapp optimize <config.toml> --app <file>
                                   run a prompt-optimization job against a task app
  taskapp dev-backend [options]    run a local job backend (GEPA, offline with a built-in model)
  taskapp help <command>           help for one command
  taskapp --version                print the version

Exit status: 0 ok, 1 failure (start failed, app unhealthy), 2 bad usage (found before
anything starts: an unknown or mistyped flag, a bad value, flags that do not go together),
130/143 stopped by SIGINT/SIGTERM.`

const SERVE = `Usage: taskapp serve <file> [options]

Start the task app in <file> (.ts, .mts, .js or .mjs exporting \`default\`, \`app\`,
\`buildConfig\` or \`config\`), open a tunnel, print its URL and the headers a caller
must send, and run until Ctrl+C (then stop cleanly: tunnel, then server).

Options:
${formatFlags(SERVE_FLAGS)}

Output: stdout gets the URL and headers (machine-readable with --json); progress and
logs go to stderr. Secrets in logs are shortened to a prefix; the relay worker token is
printed in full on stdout once, because a caller cannot reach the app without it.

Secrets: a key or token given as a flag shows in \`ps\` to every local user, so the CLI
warns; give it in a file (--api-key-file, --relay-api-key-file, --cloudflare-token-file)
or in the environment variable instead.

Examples:
  taskapp serve ./task-app.ts
  taskapp serve ./task-app.ts --relay-url http://127.0.0.1:${DEFAULTS.relayPort} --relay-api-key-file ./relay-key
  taskapp serve ./task-app.ts --tunnel quick --port 9000`

const CHECK = `Usage: taskapp check <url> [options]

Probe a task app: GET <url>/health (must answer 200), then GET <url>/info. Prints
the result; exits 0 when healthy, 1 when not.

Options:
${formatFlags(CHECK_FLAGS)}

Examples (the key from ENVIRONMENT_API_KEY, or from a file; headers named like a
credential, e.g. the worker token, belong in --header-file):
  taskapp check http://127.0.0.1:8114
  taskapp check http://127.0.0.1:8787/s/rt_... --api-key-file ./app-key --header-file ./worker-token-header`

const RELAY = `Usage: taskapp relay [options]

Run a self-hosted SynthTunnel relay: task apps (\`taskapp serve --relay-url ...\`) open
leases on it, callers reach them at <public-url>/s/<route_token>. Stops on Ctrl+C.

Options:
${formatFlags(RELAY_FLAGS)}

Routes: GET /health (relay liveness), the lease API under /api/v1/synthtunnel/leases,
the agent WebSocket, and public traffic under /s/<route_token>/...

Example (keys in a file, one per line, not on the command line where \`ps\` shows them):
  taskapp relay --port ${DEFAULTS.relayPort} --api-key-file ./relay-keys --lease-file ./relay-leases.json`

const INIT = `Usage: taskapp init [dir] [options]

Write a ready-to-run task app project into [dir] (default: the current directory;
created if missing): package.json ("type": "module", scripts start and test),
tsconfig.json, task-app.ts (a typed task app with five instances and a rollout that
scores an answer), task-app.test.ts, README.md and .gitignore. Refuses a non-empty
directory (a lone .git is fine) unless --force.

Options:
${formatFlags(INIT_FLAGS)}

Example:
  taskapp init my-task-app && cd my-task-app && npm install && npm start`

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
    case 'init':
      return `${INIT}\n`
    case 'optimize':
      return `${OPTIMIZE_HELP}\n`
    case 'dev-backend':
      return `${DEV_BACKEND_HELP}\n`
    default:
      return `${MAIN}\n`
  }
}
