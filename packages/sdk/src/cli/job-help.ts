/**
 * Help texts of the job commands (`taskapp optimize`, `taskapp dev-backend`). The Options
 * sections are generated from their flag tables in `flags.ts`.
 */
import { formatFlags } from './flag-parse'
import { DEV_BACKEND_FLAGS, OPTIMIZE_FLAGS } from './flags'

/** `taskapp optimize --help`. */
export const OPTIMIZE_HELP = `Usage: taskapp optimize <config.toml> --app <file> [options]

Run a prompt-optimization job (GEPA, MIPRO; synth-ai's TOML) against a task app started
here: start the app in <file> with its tunnel (none for a backend on this machine), give
the job its URL and the tunnel's worker token, submit the job, show its progress, print
the result (baseline vs best score, the best prompt), and stop the app.

Options:
${formatFlags(OPTIMIZE_FLAGS)}

Output: stderr shows progress (on a terminal one updating line: generation, rollouts used
of the budget, best score so far, elapsed); stdout gets the final table, or with --json
one JSON event per line (task_app_started, submitted, job_event, cancelling, result).

The task app must let the backend in: a job carries the tunnel's worker token and no key.
Through a relay the agent adds the app's key; otherwise the app verifies the backend's
container tokens (--container-keys, the key \`taskapp dev-backend\` prints).

Exit status: 0 the job succeeded, 1 it failed (or the app could not start), 2 bad usage
or a bad job config, 130/143 after Ctrl+C/SIGTERM: the job is cancelled on the backend
first (a second Ctrl+C exits at once).

Examples (keys in the environment or a file, never on the command line):
  export SYNTH_API_KEY="$(cat ./dev-key)"
  taskapp optimize gepa.toml --app ./task-app.ts --backend http://127.0.0.1:8000 --container-keys "$BACKEND_PUBKEY"
  taskapp optimize gepa.toml --app ./task-app.ts --override prompt_learning.gepa.rollout.budget=200 --json`

/** `taskapp dev-backend --help`. */
export const DEV_BACKEND_HELP = `Usage: taskapp dev-backend (--deterministic-model | --upstream-url <url>) [options]

Run a local backend for Synth's prompt-optimization job API: jobs created on it run a
real, small GEPA search against their task app, whose model calls go through the
backend to the model. Prints its URL, the job API key and, with a signing key, the
public key task apps must trust. Runs until Ctrl+C.

Options:
${formatFlags(DEV_BACKEND_FLAGS)}

Keys stay off the command line: the job API keys in SYNTH_API_KEY or --api-key-file,
the upstream key in TASKAPP_UPSTREAM_API_KEY or --upstream-api-key-file, the signing
key in --signing-key-file or SYNTH_CONTAINER_AUTH_PRIVATE_KEY. The private signing key
is never printed; the public one is (it is not a secret).

Examples:
  taskapp dev-backend --deterministic-model --generate-signing-key
  TASKAPP_UPSTREAM_API_KEY="$OPENAI_API_KEY" taskapp dev-backend --upstream-url https://api.openai.com/v1 --upstream-model gpt-4o-mini`
