/**
 * The rules between flags of `taskapp optimize` and `taskapp dev-backend` (the flags themselves,
 * their env fallbacks and secret files, are checked table-wide in flags.test.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseCommand, type DevBackendCommand, type OptimizeCommand } from './args'

function optimize(argv: string[], env: Record<string, string> = {}): OptimizeCommand {
  return parseCommand(['optimize', 'job.toml', '--app', 'app.ts', ...argv], env) as OptimizeCommand
}

function devBackend(argv: string[], env: Record<string, string> = {}, warn?: (l: string) => void) {
  return parseCommand(['dev-backend', ...argv], env, warn ? { warn } : {}) as DevBackendCommand
}

function usageError(run: () => unknown): string {
  try {
    run()
  } catch (err) {
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_CLI_USAGE' })
    return (err as Error).message
  }
  throw new Error('no usage error')
}

describe('taskapp optimize', () => {
  it('takes the config, the app and the defaults', () => {
    expect(optimize([])).toEqual({
      command: 'optimize',
      config: 'job.toml',
      app: 'app.ts',
      port: 8114,
      overrides: {},
      timeoutMs: 3_600_000,
      json: false,
      logLevel: 'warn',
    })
  })

  it('reads --override values as JSON when they parse, else as text, in order', () => {
    const cmd = optimize([
      '--override',
      'prompt_learning.gepa.rollout.budget=120',
      '-o',
      'prompt_learning.policy.model=gpt-4o-mini',
      '-o',
      'prompt_learning.gepa.evaluation.validation_seeds={"start":150,"end":175}',
      '-o',
      'prompt_learning.gepa.rollout.budget=90',
    ])
    expect(cmd.overrides).toEqual({
      'prompt_learning.gepa.rollout.budget': 90,
      'prompt_learning.policy.model': 'gpt-4o-mini',
      'prompt_learning.gepa.evaluation.validation_seeds': { start: 150, end: 175 },
    })
    expect(usageError(() => optimize(['--override', 'budget']))).toContain(
      '--override must look like "prompt_learning.gepa.rollout.budget=200" (key=value), got "budget"',
    )
  })

  it.each([
    [['optimize', '--app', 'a.ts'], 'missing the job config'],
    [['optimize', 'a.toml', 'b.toml', '--app', 'a.ts'], 'expected one job config, got 2'],
    [['optimize', 'a.toml'], '--app <file> is required'],
    [['optimize', 'a.toml', '--app', 'a.py'], '--app must be a .ts, .mts, .js or .mjs file'],
    [
      ['optimize', 'a.toml', '--app', 'a.ts', '--tunnel', 'named'],
      '--tunnel must be one of local, synthtunnel, quick',
    ],
    [
      ['optimize', 'a.toml', '--app', 'a.ts', '--tunnel', 'local', '--relay-url', 'http://127.0.0.1:1'],
      '--relay-url only applies to --tunnel synthtunnel (the tunnel is local)',
    ],
    [
      [
        'optimize',
        'a.toml',
        '--app',
        'a.ts',
        '--tunnel',
        'synthtunnel',
        '--backend',
        'http://127.0.0.1:8000',
      ],
      '--tunnel synthtunnel with a backend on this machine needs a relay: --relay-url <url>',
    ],
  ])('%j is refused: %s', (argv, words) => {
    const message = usageError(() => parseCommand(argv, {}))
    expect(message).toContain(words)
    expect(message).toContain('Run `taskapp optimize --help` for usage.')
  })

  it('a relay URL (flag or TASKAPP_RELAY_URL) means the synthtunnel tunnel; --tunnel local ignores the env one', () => {
    expect(optimize(['--relay-url', 'http://127.0.0.1:8787'])).toMatchObject({
      relayUrl: 'http://127.0.0.1:8787',
    })
    expect(
      optimize(['--tunnel', 'local'], { TASKAPP_RELAY_URL: 'http://127.0.0.1:8787' }),
    ).not.toHaveProperty('relayUrl')
    // A remote backend: --tunnel synthtunnel without a relay leases on the backend itself.
    expect(optimize(['--tunnel', 'synthtunnel', '--backend', 'https://api.usesynth.ai'])).toMatchObject({
      tunnelMode: 'synthtunnel',
    })
  })

  it('a bad SYNTH_BACKEND_URL_OVERRIDE is a usage error naming the variable', () => {
    expect(
      usageError(() => optimize(['--tunnel', 'synthtunnel'], { SYNTH_BACKEND_URL_OVERRIDE: 'nope' })),
    ).toContain('SYNTH_BACKEND_URL_OVERRIDE')
  })
})

describe('taskapp dev-backend', () => {
  const dir = mkdtempSync(join(tmpdir(), 'taskapp-dev-backend-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('needs exactly one model', () => {
    expect(usageError(() => devBackend([]))).toContain('give a model: --deterministic-model')
    expect(
      usageError(() => devBackend(['--deterministic-model', '--upstream-url', 'http://127.0.0.1:1/v1'])),
    ).toContain('--deterministic-model and --upstream-url are both given')
    expect(
      usageError(() => devBackend(['--deterministic-model', '--upstream-model', 'gpt-4o-mini'])),
    ).toContain('--upstream-model only applies to --upstream-url')
    // An upstream URL in the environment gives way to --deterministic-model.
    const cmd = devBackend(['--deterministic-model'], { TASKAPP_UPSTREAM_URL: 'http://127.0.0.1:1/v1' })
    expect(cmd).toMatchObject({ deterministicModel: true, port: 8000, host: '127.0.0.1', apiKeys: [] })
    expect(cmd).not.toHaveProperty('upstreamUrl')
  })

  it('the upstream key from the env or a file, never echoed in the command', () => {
    const file = join(dir, 'upstream-key')
    writeFileSync(file, 'sk-upstream-from-file\n', { mode: 0o600 })
    const url = ['--upstream-url', 'http://127.0.0.1:1/v1']
    expect(devBackend([...url], { TASKAPP_UPSTREAM_API_KEY: 'sk-env' })).toMatchObject({
      upstreamApiKey: 'sk-env',
      upstreamApiKeyFrom: 'env',
    })
    expect(devBackend([...url, '--upstream-api-key-file', file])).toMatchObject({
      upstreamApiKey: 'sk-upstream-from-file',
      upstreamApiKeyFrom: 'file',
    })
  })

  it('the signing key: a file, SYNTH_CONTAINER_AUTH_PRIVATE_KEY, or generated; never two', () => {
    const file = join(dir, 'signing-key')
    writeFileSync(file, 'c2VlZC1vZi0zMi1ieXRlcy0wMTIzNDU2Nzg5YWJjZA==\n', { mode: 0o600 })
    expect(devBackend(['--deterministic-model', '--signing-key-file', file])).toMatchObject({
      signingKey: 'c2VlZC1vZi0zMi1ieXRlcy0wMTIzNDU2Nzg5YWJjZA==',
      signingKeyFrom: 'file',
    })
    const env = { SYNTH_CONTAINER_AUTH_PRIVATE_KEY: 'a2V5' }
    expect(devBackend(['--deterministic-model'], env)).toMatchObject({
      signingKey: 'a2V5',
      signingKeyFrom: 'env',
    })
    const generated = devBackend(['--deterministic-model', '--generate-signing-key'], env)
    expect(generated).toMatchObject({ generateSigningKey: true })
    expect(generated).not.toHaveProperty('signingKey')
    expect(
      usageError(() =>
        devBackend(['--deterministic-model', '--generate-signing-key', '--signing-key-file', file]),
      ),
    ).toContain('--signing-key-file and --generate-signing-key are both given')
    expect(
      usageError(() => devBackend(['--deterministic-model', '--signing-key-file', join(dir, 'none')])),
    ).toContain('--signing-key-file')
  })

  it('warns when the signing key file is readable by others', () => {
    const file = join(dir, 'open-signing-key')
    writeFileSync(file, 'a2V5\n', { mode: 0o644 })
    const warnings: string[] = []
    devBackend(['--deterministic-model', '--signing-key-file', file], {}, (line) => warnings.push(line))
    expect(warnings.join('\n')).toContain('is readable by other users')
  })

  it('refuses positionals', () => {
    expect(usageError(() => devBackend(['--deterministic-model', 'extra']))).toContain(
      'takes no positional arguments',
    )
  })
})
