/**
 * End to end, real processes: how `taskapp serve` says what went wrong. A start failure is one
 * `✗` line (no ERROR log line, no `could not start`, no repeated `cause:`); a taken port that the
 * CLI moved from or freed is said on a progress line; the holder is a real child process.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO_ROOT, portIsFree, shellStatus, spawnProcess, spawnTs } from './test-helpers'

const CLI = join(REPO_ROOT, 'packages/sdk/src/cli/cli.ts')
const EXAMPLE = 'apps/example/src/task-app.ts'

/** A child process holding a free port of 127.0.0.1 (killed with its group on dispose). */
async function holdPort() {
  const holder = spawnProcess(process.execPath, [
    '-e',
    "const s = require('node:net').createServer(); s.listen(0, '127.0.0.1', () => console.log('PORT ' + s.address().port))",
  ])
  const [, port] = await holder.waitForLine(/^PORT (\d+)$/, 10_000)
  return { holder, port: Number(port) }
}

/** The non-empty lines of a stream's text. */
function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '')
}

/** `taskapp serve` of the example on `port`, local tunnel, with `--on-port-conflict <policy>`. */
function serveOnPort(port: number, policy: 'error' | 'kill', ...extra: string[]) {
  return spawnTs(CLI, [
    'serve',
    EXAMPLE,
    '--tunnel',
    'local',
    '--port',
    String(port),
    '--on-port-conflict',
    policy,
    ...extra,
  ])
}

describe('a start failure is printed once', () => {
  it('a file that does not exist: one ✗ line with the path and the code, exit 1', async () => {
    await using cli = spawnTs(CLI, ['serve', 'apps/example/src/no-such-file.ts', '--tunnel', 'local'])
    expect((await cli.exited).code).toBe(1)
    expect(lines(cli.stderr())).toEqual([
      '✗ starting apps/example/src/no-such-file.ts (local tunnel): the task app file apps/example/src/no-such-file.ts ' +
        `does not exist (looked for ${join(REPO_ROOT, 'apps/example/src/no-such-file.ts')}). [TASKAPP_ERR_TASK_APP_NOT_FOUND]`,
    ])
    expect(cli.stdout()).toBe('')
  })

  it('a taken port with --on-port-conflict error: the progress line, then one ✗ line naming the holder and the flags', async () => {
    const { holder, port } = await holdPort()
    await using _holder = holder
    await using cli = serveOnPort(port, 'error')
    expect((await cli.exited).code).toBe(1)
    const err = lines(cli.stderr())
    expect(err).toHaveLength(2)
    expect(err[0]).toBe(`… starting ${EXAMPLE} (local tunnel)`)
    expect(err[1]).toMatch(
      new RegExp(
        `^✗ starting ${EXAMPLE} \\(local tunnel\\): port ${port} on 127\\.0\\.0\\.1 is taken by PID ${holder.pid} \\(.*node.*\\): ` +
          `choose another --port, or --on-port-conflict kill to stop PID ${holder.pid} first, or --on-port-conflict next ` +
          'to serve on the next free port\\. \\[TASKAPP_ERR_PORT_IN_USE\\]$',
      ),
    )
    expect(cli.stderr()).not.toMatch(/ERROR|could not start|cause:|onConflict/)
  })
})

describe('a taken port never moves silently', () => {
  it('next (the default): a progress line says which port is taken, by whom, and where it serves', async () => {
    const { holder, port } = await holdPort()
    await using _holder = holder
    await using cli = spawnTs(CLI, ['serve', EXAMPLE, '--tunnel', 'local', '--port', String(port), '--json'])
    const [line] = await cli.waitForLine(/^\{.*\}$/, 45_000)
    const report = JSON.parse(line) as { port: number }
    expect(report.port).not.toBe(port)
    expect(cli.stderr()).toMatch(
      new RegExp(
        `^· port ${port} is taken by PID ${holder.pid} \\(.*node.*\\): serving on ${report.port}$`,
        'm',
      ),
    )
    cli.child.kill('SIGINT')
    expect(shellStatus(await cli.exited)).toBe(130)
  })

  it('kill: a progress line names the process it stopped, which is gone', async () => {
    const { holder, port } = await holdPort()
    await using _holder = holder
    await using cli = serveOnPort(port, 'kill')
    await cli.waitForLine(/^Press Ctrl\+C to stop\.$/, 45_000)
    expect(await holder.exited).toEqual({ code: null, signal: 'SIGTERM' })
    expect(cli.stdout()).toContain(`  local:  http://127.0.0.1:${port}`)
    expect(cli.stderr()).toMatch(
      new RegExp(
        `^· stopped PID ${holder.pid} \\(.*node.*\\), which held port ${port} \\(--on-port-conflict kill\\)$`,
        'm',
      ),
    )
    cli.child.kill('SIGINT')
    expect(shellStatus(await cli.exited)).toBe(130)
    await expect
      .poll(() => portIsFree(port), { timeout: 10_000, interval: 25, message: `port ${port} to be free` })
      .toBe(true)
  })
})

describe('bad usage exits 2, in flags, before anything starts', () => {
  it.each([
    {
      name: '--host 0.0.0.0 without --allow-non-loopback',
      argv: ['serve', EXAMPLE, '--host', '0.0.0.0'],
      message:
        /^taskapp serve: --host 0\.0\.0\.0 is not a loopback address, .* add --allow-non-loopback if you mean to expose it\.$/m,
    },
    {
      name: '--tunnel synthtunnel with no relay key anywhere',
      argv: ['serve', EXAMPLE, '--tunnel', 'synthtunnel'],
      message:
        /^taskapp serve: --tunnel synthtunnel needs a relay and its key: for Synth's hosted relay set SYNTH_API_KEY/m,
    },
    {
      name: 'a typo: --tunel',
      argv: ['serve', EXAMPLE, '--tunel', 'quick'],
      message: /^taskapp serve: unknown option --tunel; did you mean --tunnel\?$/m,
    },
  ])('$name', async ({ argv, message }) => {
    await using cli = spawnTs(CLI, argv, {
      env: {
        SYNTH_API_KEY: undefined,
        TASKAPP_RELAY_URL: undefined,
        TASKAPP_RELAY_API_KEY: undefined,
        TASKAPP_TUNNEL: undefined,
      },
    })
    expect((await cli.exited).code).toBe(2)
    expect(cli.stderr()).toMatch(message)
    expect(lines(cli.stderr())).toHaveLength(2) // the message and the pointer to --help
    expect(cli.stderr()).toMatch(/^Run `taskapp serve --help` for usage\.$/m)
    expect(cli.stdout()).toBe('')
  })
})
