/**
 * The `taskapp` CLI as a function: argv in, exit status out. `cli.ts` is the thin entry that
 * calls it with the real process.
 */
import pkg from '../../package.json' with { type: 'json' }
import { SdkError } from '../errors'
import { COMMANDS, parseCommand, type CliEnv, type CommandName } from './args'
import { helpText } from './help'
import type { CliIo } from './output'
import { formatRendered, renderError } from './render-error'
import type { ServeProcess } from './serve'

/** The CLI's version (the sdk package's). */
export const CLI_VERSION: string = (pkg as { version: string }).version

/**
 * Runs the CLI; resolves to the exit status: 0 ok, 1 failure, 2 bad usage, 130/143 after
 * SIGINT/SIGTERM. Usage errors go to stderr with a pointer to `--help`.
 *
 * @example
 * ```ts
 * process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }, process.env, process)
 * ```
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo,
  env: CliEnv,
  proc: ServeProcess,
): Promise<number> {
  try {
    // Warnings (a secret given as a flag) go to stderr, never to a logger or the console.
    const cmd = parseCommand(argv, env, { warn: (line) => io.stderr.write(`${line}\n`) })
    switch (cmd.command) {
      case 'help':
        io.stdout.write(helpText(cmd.topic))
        return 0
      case 'version':
        io.stdout.write(`${CLI_VERSION}\n`)
        return 0
      // Each command loads its own dependencies, so `--help` and bad usage answer at once.
      case 'check':
        return await (await import('./check')).runCheck(cmd, io)
      case 'serve':
        return await (await import('./serve')).runServe(cmd, io, proc)
      case 'relay':
        return await (await import('./relay')).runRelay(cmd, io, proc, env)
      case 'init':
        return await (await import('./init')).runInit(cmd, io)
      case 'optimize':
        return await (await import('./optimize')).runOptimize(cmd, io, proc, env)
      case 'dev-backend':
        return await (await import('./dev-backend')).runDevBackend(cmd, io, proc)
    }
  } catch (err) {
    if (err instanceof SdkError) {
      io.stderr.write(`${err.message}\n`)
      return err.code === 'TASKAPP_ERR_CLI_USAGE' ? 2 : 1
    }
    // Anything else a command let through: once, in the CLI's words.
    const command = (COMMANDS as readonly string[]).includes(argv[0] ?? '')
      ? (argv[0] as CommandName)
      : undefined
    const r = renderError(err, { command })
    io.stderr.write(`taskapp${command === undefined ? '' : ` ${command}`}: ${formatRendered(r)}\n`)
    return r.usage ? 2 : 1
  }
}
