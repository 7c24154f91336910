import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InProcessTaskApp } from '@taskapp/in-process'
import { generateContainerKeyPair } from '@taskapp/task-server'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { parseCommand, type CliEnv, type CommandName, type ServeCommand } from './args'
import { flagNotes, type FlagTable } from './flag-table'
import { flagRows, parseArgsOptions } from './flag-parse'
import { FLAG_TABLES } from './flags'
import { helpText } from './help'
import { publicTunnel, serveOptions } from './serve'

const TABLES = Object.entries(FLAG_TABLES) as [CommandName, FlagTable][]

/** The positionals each command needs. */
const POSITIONALS: Record<CommandName, string[]> = {
  serve: ['app.ts'],
  check: ['http://127.0.0.1:1'],
  relay: [],
  init: [],
  optimize: ['job.toml'],
  'dev-backend': [],
}

/**
 * Two values for every flag with an environment fallback (neither the default), and the other
 * flags it needs. A list flag's value is comma-separated, as in its environment variable.
 */
// Real public keys, so the samples pass the same key check the task server uses.
const KEYS_A = generateContainerKeyPair({ kid: 'a' }).trusted
const KEYS_B = generateContainerKeyPair({ kid: 'b' }).trusted

/** Cluster secrets in files (mode 0600), for the relay's cluster flags. */
const SECRETS_DIR = mkdtempSync(join(tmpdir(), 'taskapp-cluster-secret-'))
afterAll(() => rmSync(SECRETS_DIR, { recursive: true, force: true }))
const SECRET_FILE_A = join(SECRETS_DIR, 'a')
const SECRET_FILE_B = join(SECRETS_DIR, 'b')
writeFileSync(SECRET_FILE_A, 'cluster-secret-aaaaaaaaaaaa\n', { mode: 0o600 })
writeFileSync(SECRET_FILE_B, 'cluster-secret-bbbbbbbbbbbb\n', { mode: 0o600 })
const CLUSTER = ['--redis-url', 'redis://127.0.0.1:6379', '--cluster-secret-file', SECRET_FILE_A]

const SAMPLES: Record<string, { a: string; b: string; with?: string[] }> = {
  'serve --port': { a: '9001', b: '9002' },
  'serve --tunnel': { a: 'quick', b: 'local' },
  'serve --relay-url': {
    a: 'http://127.0.0.1:1',
    b: 'https://relay.example.com',
    with: ['--relay-api-key', 'k'],
  },
  'serve --relay-api-key': { a: 'key-a', b: 'key-b', with: ['--relay-url', 'http://127.0.0.1:1'] },
  'serve --api-key': { a: 'app-a', b: 'app-b' },
  'serve --public-url': {
    a: 'https://a.example.com',
    b: 'https://b.example.com',
    with: ['-t', 'preconfigured'],
  },
  'serve --cloudflare-token': {
    a: 'tok-a',
    b: 'tok-b',
    with: ['-t', 'named', '--hostname', 'h.example.com'],
  },
  'serve --hostname': {
    a: 'a.example.com',
    b: 'b.example.com',
    with: ['-t', 'named', '--cloudflare-token', 't'],
  },
  'serve --container-keys': { a: KEYS_A, b: KEYS_B },
  'serve --container-auth': { a: 'disabled', b: 'required', with: ['--container-keys', KEYS_A] },
  'serve --container-issuer': { a: 'iss-a', b: 'iss-b', with: ['--container-keys', KEYS_A] },
  'serve --log-level': { a: 'debug', b: 'error' },
  'check --api-key': { a: 'check-a', b: 'check-b' },
  'relay --port': { a: '0', b: '9003' },
  'relay --host': { a: '::1', b: 'localhost' },
  'relay --public-url': { a: 'https://r.example.com', b: 'https://s.example.com' },
  'relay --api-key': { a: 'k1,k2', b: 'k3' },
  'relay --lease-file': { a: '/tmp/a.json', b: '/tmp/b.json' },
  'relay --log-level': { a: 'debug', b: 'warn' },
  'relay --admin-key': { a: 'admin-key-aaaaaaaaaaaa', b: 'admin-key-bbbbbbbbbbbb' },
  'relay --admin-port': { a: '0', b: '9464' },
  'relay --admin-host': { a: '::1', b: 'localhost' },
  'relay --redis-url': {
    a: 'redis://127.0.0.1:6379',
    b: 'unix:///run/redis/redis.sock',
    with: ['--cluster-secret-file', SECRET_FILE_A],
  },
  'relay --advertise-url': { a: 'http://10.0.0.1:8787', b: 'http://10.0.0.2:8787', with: CLUSTER },
  'relay --cluster-secret-file': {
    a: SECRET_FILE_A,
    b: SECRET_FILE_B,
    with: ['--redis-url', 'redis://127.0.0.1:6379'],
  },
  'relay --node-id': { a: 'node-a', b: 'node-b', with: CLUSTER },
  'optimize --backend-api-key': { a: 'sk-a', b: 'sk-b', with: ['--app', 'app.ts'] },
  'optimize --relay-url': {
    a: 'http://127.0.0.1:1',
    b: 'https://relay.example.com',
    with: ['--app', 'app.ts'],
  },
  'optimize --relay-api-key': {
    a: 'rk-a',
    b: 'rk-b',
    with: ['--app', 'app.ts', '--relay-url', 'http://127.0.0.1:1'],
  },
  'optimize --container-keys': { a: KEYS_A, b: KEYS_B, with: ['--app', 'app.ts'] },
  'optimize --port': { a: '9001', b: '0', with: ['--app', 'app.ts'] },
  'optimize --log-level': { a: 'debug', b: 'error', with: ['--app', 'app.ts'] },
  'dev-backend --port': { a: '0', b: '9004', with: ['--deterministic-model'] },
  'dev-backend --upstream-url': { a: 'http://127.0.0.1:1/v1', b: 'https://api.example.com/v1' },
  'dev-backend --upstream-api-key': {
    a: 'up-a',
    b: 'up-b',
    with: ['--upstream-url', 'http://127.0.0.1:1/v1'],
  },
  'dev-backend --upstream-model': { a: 'm-a', b: 'm-b', with: ['--upstream-url', 'http://127.0.0.1:1/v1'] },
  'dev-backend --api-key': { a: 'k1,k2', b: 'k3', with: ['--deterministic-model'] },
  'dev-backend --log-level': { a: 'debug', b: 'warn', with: ['--deterministic-model'] },
}

/** The value at a table target: a command field, or `tunnel.<key>` of the serve tunnel spec. */
function at(cmd: unknown, target: string): unknown {
  const [head, rest] = target.split('.') as [string, string | undefined]
  const value = (cmd as Record<string, unknown>)[head]
  return rest === undefined ? value : (value as Record<string, unknown>)[rest]
}

/** The Options entries of a help text, by flag name. */
function helpEntries(text: string): Map<string, string> {
  const options = text.split('Options:\n')[1]?.split('\n\n')[0] ?? ''
  const entries = new Map<string, string>()
  let current = ''
  for (const line of options.split('\n')) {
    const name = /^ {2}(?:-\w, | {4})--([\w-]+)/.exec(line)?.[1]
    if (name !== undefined) entries.set((current = name), line)
    else entries.set(current, `${entries.get(current) ?? ''}\n${line}`)
  }
  return entries
}

describe('the flag tables', () => {
  it.each(TABLES)('%s: names and aliases are unique, and parseArgs gets every flag', (_, table) => {
    // every flag, and the --<name>-file companion of each secret one
    const flags = flagRows(table).filter((f) => f.name !== 'help')
    const names = flags.map((f) => f.name)
    const shorts = flags.flatMap((f) => (f.short === undefined ? [] : [f.short]))
    expect(new Set(names).size).toBe(names.length)
    expect(new Set(shorts).size).toBe(shorts.length)
    const options = parseArgsOptions(table)
    expect(Object.keys(options).sort()).toEqual([...names, 'help'].sort())
    for (const flag of flags) {
      expect(options[flag.name]).toEqual({
        type: flag.type,
        ...(flag.short !== undefined && { short: flag.short }),
        ...(flag.multiple && { multiple: true }),
      })
    }
  })

  it.each(TABLES)(
    '%s --help lists every flag of the table with its alias, value, default and env',
    (topic, table) => {
      const entries = helpEntries(helpText(topic))
      expect([...entries.keys()]).toEqual(flagRows(table).map((f) => f.name))
      for (const flag of flagRows(table)) {
        const entry = entries.get(flag.name) ?? ''
        const left = `${flag.short === undefined ? '    ' : `-${flag.short}, `}--${flag.name}`
        expect(entry).toContain(`${left}${flag.value === undefined ? '' : ` ${flag.value}`}`)
        expect(entry.replace(/\s+/g, ' ')).toContain(flag.help)
        for (const name of flag.env) expect(entry).toContain(name)
        if (flag.defaultHelp !== undefined)
          expect(entry.replace(/\s+/g, ' ')).toContain(`default: ${flag.defaultHelp}`)
        expect(entry.replace(/\s+/g, ' ')).toContain(flagNotes(flag))
      }
    },
  )

  it('the README lists every flag and environment variable', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')
    const cli = readme.slice(readme.indexOf('## The `taskapp` CLI'), readme.indexOf('## Errors'))
    expect(cli).toContain('src/cli/flags.ts')
    for (const [topic, table] of TABLES) {
      const section = cli.slice(cli.indexOf(`### \`taskapp ${topic}`))
      for (const flag of flagRows(table).filter((f) => f.name !== 'help')) {
        expect(section, `${topic} --${flag.name}`).toContain(`--${flag.name}`)
        for (const name of flag.env) expect(section, `${topic} --${flag.name}: ${name}`).toContain(name)
      }
    }
  })

  const WITH_ENV = TABLES.flatMap(([command, table]) =>
    Object.entries(table)
      .filter(([, flag]) => flag.env.length > 0)
      .map(([target, flag]) => ({ command, target, flag, label: `${command} --${flag.name}` })),
  )

  it.each(WITH_ENV)(
    '$label: every env fallback is honoured, the flag wins',
    ({ command, target, flag, label }) => {
      const sample = SAMPLES[label]
      expect(sample, `add a sample for ${label}`).toBeDefined()
      if (sample === undefined) return
      const base = [command, ...POSITIONALS[command], ...(sample.with ?? [])]
      const given = (value: string) =>
        flag.multiple ? value.split(',').flatMap((v) => [`--${flag.name}`, v]) : [`--${flag.name}`, value]
      const parse = (argv: string[], env: CliEnv = {}) => at(parseCommand(argv, env), target)
      /** The value, or the usage error when the flag is required there (e.g. --public-url). */
      const attempt = (argv: string[], env: CliEnv = {}) => {
        try {
          return parse(argv, env)
        } catch (err) {
          return err instanceof Error ? err.message : err
        }
      }

      const fromFlag = parse([...base, ...given(sample.a)])
      expect(fromFlag).not.toEqual(attempt(base))
      for (const name of flag.env) expect(parse(base, { [name]: sample.a }), name).toEqual(fromFlag)
      // a blank variable counts as unset
      for (const name of flag.env) expect(attempt(base, { [name]: '  ' }), name).toEqual(attempt(base))
      // the flag wins over every variable
      const env = Object.fromEntries(flag.env.map((name) => [name, sample.a]))
      expect(parse([...base, ...given(sample.b)], env)).toEqual(parse([...base, ...given(sample.b)]))
      expect(parse([...base, ...given(sample.b)], env)).not.toEqual(fromFlag)
      // the first variable set wins
      if (flag.env.length > 1) {
        const both = Object.fromEntries(flag.env.map((name, i) => [name, i === 0 ? sample.a : sample.b]))
        expect(parse(base, both)).toEqual(fromFlag)
      }
    },
  )

  const SECRET = WITH_ENV.filter(({ flag }) => flag.secret !== undefined)
  const dir = mkdtempSync(join(tmpdir(), 'taskapp-flags-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('the secret flags are the keys and tokens', () => {
    const secret = TABLES.flatMap(([command, table]) =>
      Object.values(table)
        .filter((flag) => flag.secret !== undefined)
        .map((flag) => `${command} --${flag.name}`),
    )
    expect(secret.sort()).toEqual(
      [
        'check --api-key',
        'check --header',
        'optimize --backend-api-key',
        'optimize --relay-api-key',
        'dev-backend --upstream-api-key',
        'dev-backend --api-key',
        'relay --api-key',
        'relay --admin-key',
        'relay --redis-url',
        'serve --api-key',
        'serve --cloudflare-token',
        'serve --relay-api-key',
      ].sort(),
    )
  })

  it.each(SECRET)(
    '$label: its --<name>-file gives what the flag gives, and wins over the env',
    ({ command, target, flag, label }) => {
      const sample = SAMPLES[label]
      expect(sample, `add a sample for ${label}`).toBeDefined()
      if (sample === undefined) return
      const base = [command, ...POSITIONALS[command], ...(sample.with ?? [])]
      const given = (value: string) =>
        flag.multiple ? value.split(',').flatMap((v) => [`--${flag.name}`, v]) : [`--${flag.name}`, value]
      const file = join(dir, `${command}-${flag.name}`)
      // a list file holds one value per line; a single value, one trailing newline
      writeFileSync(file, `${flag.multiple ? sample.a.split(',').join('\n') : sample.a}\n`, { mode: 0o600 })
      const parse = (argv: string[], env: CliEnv = {}) => at(parseCommand(argv, env), target)
      const fromFlag = parse([...base, ...given(sample.a)])
      const fileFlag = [`--${flag.name}-file`, file]
      expect(parse([...base, ...fileFlag])).toEqual(fromFlag)
      const env = Object.fromEntries(flag.env.map((name) => [name, sample.b]))
      expect(parse([...base, ...fileFlag], env)).toEqual(fromFlag)
      expect(() => parse([...base, ...fileFlag, ...given(sample.b)])).toThrow(/are both given/)
    },
  )

  it('every sample belongs to a flag of the tables', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(WITH_ENV.map((f) => f.label).sort())
  })
})

describe('taskapp serve: the tunnel spec', () => {
  it.each([
    [['--tunnel', 'local'], { mode: 'local' }],
    [['--tunnel', 'quick'], { mode: 'quick' }],
    [
      ['--relay-url', 'http://127.0.0.1:8787/', '--relay-api-key', 'rk'],
      { mode: 'synthtunnel', relayUrl: 'http://127.0.0.1:8787', relayApiKey: 'rk' },
    ],
    [
      ['-t', 'named', '--cloudflare-token', 'tok', '--hostname', 'app.example.com'],
      { mode: 'named', token: 'tok', hostname: 'app.example.com' },
    ],
    [
      ['-t', 'preconfigured', '--public-url', 'https://x.example.com/'],
      { mode: 'preconfigured', url: 'https://x.example.com' },
    ],
  ])('%j → %j, which InProcessTaskApp takes without the deprecated flat keys', (argv, spec) => {
    const cmd = parseCommand(['serve', 'app.ts', ...argv]) as ServeCommand
    expect(cmd.tunnel).toEqual(spec)
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined)
    try {
      const options = serveOptions({
        ...cmd,
        file: fileURLToPath(new URL('../fixtures/echo-app.ts', import.meta.url)),
      })
      expect(options.tunnel).toEqual(spec)
      const flat = [
        'tunnelMode',
        'relayUrl',
        'relayApiKey',
        'preconfiguredUrl',
        'namedTunnelToken',
        'namedTunnelHostname',
      ]
      for (const key of flat) expect(options).not.toHaveProperty(key)
      expect(new InProcessTaskApp(options).state).toBe('idle')
      expect(warn).not.toHaveBeenCalled()
    } finally {
      warn.mockRestore()
    }
  })

  it('keeps only the keys the mode takes (an env relay key does not leak into a local tunnel)', () => {
    const env = { SYNTH_API_KEY: 'sk', CLOUDFLARE_TUNNEL_TOKEN: 't', TASKAPP_URL: 'https://u.example.com' }
    expect(parseCommand(['serve', 'a.ts'], env)).toMatchObject({ tunnel: { mode: 'local' } })
    expect((parseCommand(['serve', 'a.ts'], env) as ServeCommand).tunnel).toEqual({ mode: 'local' })
  })

  it('the printed spec leaves the secrets out', () => {
    expect(publicTunnel({ mode: 'synthtunnel', relayUrl: 'http://r', relayApiKey: 'secret' })).toEqual({
      mode: 'synthtunnel',
      relayUrl: 'http://r',
    })
    expect(publicTunnel({ mode: 'named', token: 'secret', hostname: 'h' })).toEqual({
      mode: 'named',
      hostname: 'h',
    })
  })
})
