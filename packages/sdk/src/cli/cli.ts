/**
 * Entry of the `taskapp` bin (built to dist/cli.js; `bin/taskapp.js` imports it). Everything
 * else lives in `main.ts` so it can be tested without a process.
 */
import { runCli } from './main'

const status = await runCli(
  process.argv.slice(2),
  { stdout: process.stdout, stderr: process.stderr },
  process.env,
  process,
)
process.exitCode = status
