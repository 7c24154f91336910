import { describe, expect, it } from 'vitest'
import { SdkError } from '../errors'
import { generateContainerKeyPair } from '@taskapp/task-server'
import { DEFAULTS, parseCommand, type CliEnv, type ServeCommand } from './args'
import { serveOptions } from './serve'
import { helpText } from './help'

function usageError(argv: string[], env: CliEnv = {}): SdkError {
  try {
    parseCommand(argv, env)
  } catch (err) {
    expect(err).toBeInstanceOf(SdkError)
    expect((err as SdkError).code).toBe('TASKAPP_ERR_CLI_USAGE')
    return err as SdkError
  }
  throw new Error(`expected ${argv.join(' ')} to be rejected`)
}

describe('parseCommand: help and version', () => {
  it.each([
    [[], undefined],
    [['--help'], undefined],
    [['-h'], undefined],
    [['help'], undefined],
    [['help', 'serve'], 'serve'],
    [['serve', '--help'], 'serve'],
    [['serve', 'x.ts', '-h'], 'serve'],
    [['check', '--help'], 'check'],
    [['relay', '--help'], 'relay'],
  ] as const)('%j → help %s', (argv, topic) => {
    expect(parseCommand(argv)).toEqual(topic === undefined ? { command: 'help' } : { command: 'help', topic })
  })

  it('--version', () => {
    expect(parseCommand(['--version'])).toEqual({ command: 'version' })
  })

  it('every help text names every flag its parser accepts', () => {
    const flags = {
      serve: [
        '--port',
        '--host',
        '--tunnel',
        '--relay-url',
        '--relay-api-key',
        '--api-key',
        '--public-url',
        '--cloudflare-token',
        '--hostname',
        '--on-port-conflict',
        '--verify-tunnel',
        '--json',
        '--log-level',
        '--verbose',
        '--allow-non-loopback',
      ],
      check: ['--api-key', '--header', '--timeout', '--wait', '--json'],
      relay: [
        '--port',
        '--host',
        '--public-url',
        '--api-key',
        '--lease-file',
        '--log-level',
        '--verbose',
        '--allow-non-loopback',
      ],
    } as const
    for (const [topic, names] of Object.entries(flags) as [keyof typeof flags, readonly string[]][]) {
      const text = helpText(topic)
      expect(text).toContain(`Usage: taskapp ${topic}`)
      for (const name of names) expect(text).toContain(name)
    }
    expect(helpText()).toMatch(/serve[\s\S]*check[\s\S]*relay/)
  })
})

describe('parseCommand: serve', () => {
  it('applies the defaults', () => {
    expect(parseCommand(['serve', 'app.ts'])).toEqual({
      command: 'serve',
      file: 'app.ts',
      port: DEFAULTS.servePort,
      host: '127.0.0.1',
      tunnel: { mode: 'local' },
      onPortConflict: 'next',
      verifyTunnel: false,
      json: false,
      logLevel: 'warn',
      allowNonLoopback: false,
    })
  })

  it('reads every flag', () => {
    const cmd = parseCommand([
      'serve',
      './app.mjs',
      '-p',
      '9000',
      '--host',
      'localhost',
      '--tunnel',
      'synthtunnel',
      '--relay-url',
      'http://127.0.0.1:8787/',
      '--relay-api-key',
      'relay-key',
      '--api-key',
      'app-key',
      '--on-port-conflict',
      'error',
      '--verify-tunnel',
      '--json',
      '--verbose',
    ])
    expect(cmd).toMatchObject({
      file: './app.mjs',
      port: 9000,
      host: 'localhost',
      tunnel: { mode: 'synthtunnel', relayUrl: 'http://127.0.0.1:8787', relayApiKey: 'relay-key' },
      apiKey: 'app-key',
      apiKeyFrom: 'flag',
      onPortConflict: 'error',
      verifyTunnel: true,
      json: true,
      logLevel: 'debug',
    })
  })

  it("--tunnel synthtunnel without a relay URL (Synth's hosted relay) never takes TASKAPP_RELAY_API_KEY", () => {
    const serve = (argv: string[], env: Record<string, string>) =>
      (parseCommand(['serve', 'a.ts', '--tunnel', 'synthtunnel', ...argv], env) as { tunnel: unknown }).tunnel
    // No relay URL: the relay is Synth's (InProcessTaskApp resolves it); only SYNTH_API_KEY or the flag go there.
    expect(serve([], { TASKAPP_RELAY_API_KEY: 'self-hosted', SYNTH_API_KEY: 'synth-key' })).toEqual({
      mode: 'synthtunnel',
      relayApiKey: 'synth-key',
    })
    // ...so a self-hosted key alone is no key for Synth: bad usage, saying why.
    expect(() => serve([], { TASKAPP_RELAY_API_KEY: 'self-hosted' })).toThrow(
      /TASKAPP_RELAY_API_KEY is a self-hosted relay's key and is never sent to Synth/,
    )
    expect(serve([], { SYNTH_API_KEY: 'synth-key' })).toEqual({
      mode: 'synthtunnel',
      relayApiKey: 'synth-key',
    })
    expect(serve(['--relay-api-key', 'flag-key'], { TASKAPP_RELAY_API_KEY: 'self-hosted' })).toEqual({
      mode: 'synthtunnel',
      relayApiKey: 'flag-key',
    })
    // With a relay URL, TASKAPP_RELAY_API_KEY is that relay's key, as before.
    expect(
      serve([], { TASKAPP_RELAY_URL: 'http://127.0.0.1:8787', TASKAPP_RELAY_API_KEY: 'self-hosted' }),
    ).toEqual({ mode: 'synthtunnel', relayUrl: 'http://127.0.0.1:8787', relayApiKey: 'self-hosted' })
  })

  it('takes values from the environment when flags are absent, flags win', () => {
    const env = {
      TASKAPP_PORT: '9100',
      TASKAPP_RELAY_URL: 'http://127.0.0.1:9999',
      SYNTH_API_KEY: 'synth-key',
      ENVIRONMENT_API_KEY: 'env-key',
      TASKAPP_LOG_LEVEL: 'WARN',
    }
    expect(parseCommand(['serve', 'a.ts'], env)).toMatchObject({
      port: 9100,
      // a relay URL is known, so the relay is the default tunnel
      tunnel: { mode: 'synthtunnel', relayUrl: 'http://127.0.0.1:9999', relayApiKey: 'synth-key' },
      apiKey: 'env-key',
      apiKeyFrom: 'env',
      logLevel: 'warn',
    })
    expect(
      parseCommand(['serve', 'a.ts', '--port', '9200', '--tunnel', 'local'], { TASKAPP_PORT: '9100' }),
    ).toMatchObject({
      port: 9200,
      tunnel: { mode: 'local' },
    })
  })

  it('named and preconfigured modes take their settings', () => {
    expect(
      parseCommand([
        'serve',
        'a.ts',
        '--tunnel',
        'named',
        '--cloudflare-token',
        't0k',
        '--hostname',
        'app.example.com',
      ]),
    ).toMatchObject({ tunnel: { mode: 'named', token: 't0k', hostname: 'app.example.com' } })
    expect(
      parseCommand(['serve', 'a.ts', '--tunnel', 'preconfigured', '--public-url', 'https://x.example.com/']),
    ).toMatchObject({
      tunnel: { mode: 'preconfigured', url: 'https://x.example.com' },
    })
    expect(
      parseCommand(['serve', 'a.ts', '--tunnel', 'preconfigured'], { TASKAPP_URL: 'https://y.example.com' }),
    ).toMatchObject({
      tunnel: { mode: 'preconfigured', url: 'https://y.example.com' },
    })
  })

  it.each([
    { argv: ['serve'], message: /missing task app file/ },
    { argv: ['serve', 'a.ts', 'b.ts'], message: /expected one task app file, got 2/ },
    { argv: ['serve', 'a.py'], message: /must end in \.ts, \.mts, \.js or \.mjs/ },
    {
      argv: ['serve', 'a.ts', '--port', 'abc'],
      message: /--port must be 0 \(any free port\) or an integer in \[1024, 65535\], got "abc"/,
    },
    { argv: ['serve', 'a.ts', '--port', '80'], message: /got 80/ },
    { argv: ['serve', 'a.ts', '--port', '70000'], message: /got 70000/ },
    { argv: ['serve', 'a.ts', '--port'], message: /--port/ },
    {
      argv: ['serve', 'a.ts', '--tunnel', 'ngrok'],
      message: /--tunnel must be one of local, quick, named, synthtunnel, preconfigured, got "ngrok"/,
    },
    { argv: ['serve', 'a.ts', '--bogus'], message: /unknown option --bogus\.$/m },
    {
      argv: ['serve', 'a.ts', '--relay-url', 'not a url', '--tunnel', 'synthtunnel'],
      message: /--relay-url must be an absolute URL/,
    },
    {
      argv: ['serve', 'a.ts', '--relay-url', 'ws://127.0.0.1:1'],
      message: /--relay-url must use http or https/,
    },
    {
      argv: ['serve', 'a.ts', '--tunnel', 'local', '--relay-url', 'http://127.0.0.1:1'],
      message: /--relay-url only applies to --tunnel synthtunnel/,
    },
    { argv: ['serve', 'a.ts', '--tunnel', 'preconfigured'], message: /needs --public-url/ },
    {
      argv: ['serve', 'a.ts', '--public-url', 'https://x.example.com'],
      message: /--public-url only applies to --tunnel preconfigured/,
    },
    {
      argv: ['serve', 'a.ts', '--tunnel', 'named'],
      message: /needs --cloudflare-token <token> and --hostname/,
    },
    {
      argv: ['serve', 'a.ts', '--on-port-conflict', 'steal'],
      message: /--on-port-conflict must be one of next, error, kill/,
    },
    {
      argv: ['serve', 'a.ts', '--log-level', 'loud'],
      message: /--log-level must be one of debug, info, warn, error, silent/,
    },
  ])('$argv → usage error', ({ argv, message }) => {
    const err = usageError(argv)
    expect(err.message).toMatch(message)
    expect(err.message).toMatch(/^taskapp serve: /)
    expect(err.message).toContain('Run `taskapp serve --help` for usage.')
  })
})

describe('parseCommand: serve, container tokens', () => {
  const KEYS = generateContainerKeyPair({ kid: 'k1' }).trusted

  it('--container-keys, --container-auth and --container-issuer go to the app as containerAuth', () => {
    const cmd = parseCommand(
      [
        'serve',
        'a.ts',
        '--container-keys',
        KEYS,
        '--container-auth',
        ' Required ',
        '--container-issuer',
        'me',
      ],
      {},
    ) as ServeCommand
    expect(cmd).toMatchObject({
      containerKeys: KEYS,
      containerAuthMode: 'required',
      containerIssuer: 'me',
      containerAuthFrom: 'flag',
    })
    expect(serveOptions(cmd).containerAuth).toEqual({ trustedKeys: KEYS, mode: 'required', issuer: 'me' })
  })

  it('from the environment alone they are checked but left to the task server (which reads them itself)', () => {
    const cmd = parseCommand(['serve', 'a.ts'], { SYNTH_CONTAINER_TRUSTED_PUBKEYS: KEYS }) as ServeCommand
    expect(cmd.containerAuthFrom).toBe('env')
    expect(serveOptions(cmd)).not.toHaveProperty('containerAuth')
    expect(
      usageError(['serve', 'a.ts'], { SYNTH_CONTAINER_TRUSTED_PUBKEYS: 'k1:not-a-key' }).message,
    ).toMatch(/--container-keys .*must be a comma list of Ed25519 public keys/)
  })

  it.each([
    [['--container-keys', 'k1:AAAA'], /--container-keys .*32 bytes/],
    [
      ['--container-keys', KEYS, '--container-auth', 'sometimes'],
      /--container-auth .*required, optional_local, disabled/,
    ],
    [['--container-auth', 'required'], /--container-auth needs trusted keys: --container-keys/],
    [['--container-issuer', 'me'], /--container-issuer needs trusted keys/],
    [
      ['--container-keys', KEYS, '--container-auth', 'optional_local', '--relay-url', 'http://127.0.0.1:1'],
      /--container-auth optional_local lets unsigned calls from loopback in, and the synthtunnel tunnel/,
    ],
  ])('%j is refused in CLI words', (flags, message) => {
    expect(usageError(['serve', 'a.ts', ...flags]).message).toMatch(message)
  })

  it('SYNTH_CONTAINER_AUTH_MODE=optional_local with a tunnel is named as the variable', () => {
    const env = { SYNTH_CONTAINER_TRUSTED_PUBKEYS: KEYS, SYNTH_CONTAINER_AUTH_MODE: 'optional_local' }
    expect(usageError(['serve', 'a.ts', '-t', 'quick'], env).message).toMatch(
      /SYNTH_CONTAINER_AUTH_MODE=optional_local lets unsigned calls/,
    )
    expect((parseCommand(['serve', 'a.ts'], env) as ServeCommand).containerAuthMode).toBe('optional_local')
  })
})

describe('parseCommand: check', () => {
  it('reads the URL, key, headers, timeout', () => {
    expect(
      parseCommand([
        'check',
        'http://127.0.0.1:8114/',
        '--api-key',
        'k',
        '-H',
        'X-SynthTunnel-Worker-Token: wt_1',
        '--header',
        'X-Other:v:w',
        '--timeout',
        '1500',
        '--wait',
        '--json',
      ]),
    ).toEqual({
      command: 'check',
      url: 'http://127.0.0.1:8114',
      apiKey: 'k',
      headers: { 'X-SynthTunnel-Worker-Token': 'wt_1', 'X-Other': 'v:w' },
      timeoutMs: 1500,
      wait: true,
      json: true,
    })
  })

  it('defaults: env key, 5 s, probe once', () => {
    expect(parseCommand(['check', 'https://a.example.com'], { ENVIRONMENT_API_KEY: 'e' })).toEqual({
      command: 'check',
      url: 'https://a.example.com',
      apiKey: 'e',
      headers: {},
      timeoutMs: DEFAULTS.checkTimeoutMs,
      wait: false,
      json: false,
    })
  })

  it.each([
    { argv: ['check'], message: /missing task app URL/ },
    { argv: ['check', 'localhost:8114'], message: /<url> must use http or https/ },
    { argv: ['check', 'nope'], message: /<url> must be an absolute URL/ },
    {
      argv: ['check', 'http://127.0.0.1:1', '--timeout', '0'],
      message: /--timeout must be a positive number/,
    },
    {
      argv: ['check', 'http://127.0.0.1:1', '--timeout', 'soon'],
      message: /--timeout must be a positive number/,
    },
    {
      argv: ['check', 'http://127.0.0.1:1', '-H', 'no-colon'],
      message: /--header must look like "Name: value"/,
    },
    { argv: ['check', 'http://127.0.0.1:1', '-H', 'bad name: v'], message: /--header must look like/ },
    { argv: ['check', 'http://127.0.0.1:1', '--port', '1'], message: /unknown option --port\.$/m },
  ])('$argv → usage error', ({ argv, message }) => {
    const err = usageError(argv)
    expect(err.message).toMatch(message)
    expect(err.message).toContain('taskapp check --help')
  })
})

describe('parseCommand: relay', () => {
  it('defaults, flags and env', () => {
    expect(parseCommand(['relay'])).toEqual({
      command: 'relay',
      port: DEFAULTS.relayPort,
      host: '127.0.0.1',
      apiKeys: [],
      adminHost: '127.0.0.1',
      logLevel: 'info',
      allowNonLoopback: false,
    })
    expect(
      parseCommand([
        'relay',
        '--port',
        '0',
        '--api-key',
        'a',
        '--api-key',
        'b',
        '--public-url',
        'https://relay.example.com/',
        '--lease-file',
        './leases.json',
        '-v',
      ]),
    ).toMatchObject({
      port: 0,
      apiKeys: ['a', 'b'],
      publicUrl: 'https://relay.example.com',
      leaseFile: './leases.json',
      logLevel: 'debug',
    })
    expect(
      parseCommand(['relay'], {
        TASKAPP_RELAY_PORT: '9001',
        TASKAPP_RELAY_HOST: '::1',
        TASKAPP_RELAY_API_KEYS: 'k1, k2,,',
        TASKAPP_RELAY_PUBLIC_BASE_URL: 'https://r.example.com',
        TASKAPP_RELAY_LEASE_FILE: '/var/lib/relay/leases.json',
        TASKAPP_LOG_LEVEL: 'debug',
      }),
    ).toMatchObject({
      port: 9001,
      host: '::1',
      apiKeys: ['k1', 'k2'],
      publicUrl: 'https://r.example.com',
      leaseFile: '/var/lib/relay/leases.json',
      logLevel: 'debug',
    })
  })

  it('--admin-port and --admin-host: the admin port on loopback unless --allow-non-loopback', () => {
    expect(parseCommand(['relay', '--admin-port', '9464'])).toMatchObject({
      adminPort: 9464,
      adminHost: '127.0.0.1',
    })
    expect(() => parseCommand(['relay', '--admin-port', '9464', '--admin-host', '0.0.0.0'])).toThrow(
      /--admin-host 0\.0\.0\.0 is not a loopback address/,
    )
    expect(
      parseCommand(['relay', '--admin-port', '9464', '--admin-host', '0.0.0.0', '--allow-non-loopback']),
    ).toMatchObject({ adminHost: '0.0.0.0' })
  })

  it('--lease-file: the flag wins over TASKAPP_RELAY_LEASE_FILE; a blank env value means in memory', () => {
    const env = { TASKAPP_RELAY_LEASE_FILE: '/from/env.json' }
    expect(parseCommand(['relay', '--lease-file', '/from/flag.json'], env)).toMatchObject({
      leaseFile: '/from/flag.json',
    })
    expect(parseCommand(['relay'], env)).toMatchObject({ leaseFile: '/from/env.json' })
    expect(parseCommand(['relay'], { TASKAPP_RELAY_LEASE_FILE: '  ' })).not.toHaveProperty('leaseFile')
    expect(parseCommand(['relay'])).not.toHaveProperty('leaseFile')
  })

  it.each([
    { argv: ['relay', 'extra'], message: /takes no positional arguments/ },
    { argv: ['relay', '--port', '-1'], message: /--port/ },
    { argv: ['relay', '--public-url', 'relay.example.com'], message: /--public-url must be an absolute URL/ },
    { argv: ['relay', '--api-key', ''], message: /--api-key must not be empty/ },
    { argv: ['relay', '--lease-file', ' '], message: /--lease-file must be a file path/ },
    { argv: ['relay', '--lease-file'], message: /Option '--lease-file <value>' argument missing/ },
    { argv: ['relay', '--redis-url', 'http://127.0.0.1:6379'], message: /--redis-url must be a redis:\/\// },
    {
      argv: ['relay', '--redis-url', 'redis://127.0.0.1:6379'],
      message: /needs the cluster secret: --cluster-secret-file/,
    },
    {
      argv: ['relay', '--advertise-url', 'http://10.0.0.1:1'],
      message: /--advertise-url is for cluster mode: give --redis-url/,
    },
    { argv: ['relay', '--node-id', 'a'], message: /--node-id is for cluster mode/ },
    { argv: ['relay', '--cluster-secret', 'x'], message: /unknown option --cluster-secret\b/ },
  ])('$argv → usage error', ({ argv, message }) => {
    expect(usageError(argv).message).toMatch(message)
  })

  it('cluster mode: the secret from TASKAPP_RELAY_CLUSTER_SECRET (never a flag), at least 16 characters', () => {
    const env = {
      TASKAPP_RELAY_REDIS_URL: 'redis://127.0.0.1:6379',
      TASKAPP_RELAY_CLUSTER_SECRET: ' s'.padEnd(20, 'x'),
    }
    expect(parseCommand(['relay', '--advertise-url', 'http://10.0.0.1:8787'], env)).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      advertiseUrl: 'http://10.0.0.1:8787',
      clusterSecret: 's'.padEnd(19, 'x'),
    })
    expect(() => parseCommand(['relay'], { ...env, TASKAPP_RELAY_CLUSTER_SECRET: 'short' })).toThrow(
      /at least 16 characters/,
    )
    expect(parseCommand(['relay'])).not.toHaveProperty('clusterSecret')
  })
})

describe('parseCommand: top level', () => {
  it.each([
    { argv: ['deploy'], message: /unknown command "deploy"; use one of serve, check, relay/ },
    { argv: ['--port', '1'], message: /unknown option "--port" \(options come after the command\)/ },
    { argv: ['help', 'deploy'], message: /unknown help topic "deploy"/ },
  ])('$argv → usage error', ({ argv, message }) => {
    const err = usageError(argv)
    expect(err.message).toMatch(message)
    expect(err.message).toContain('taskapp --help')
  })
})
