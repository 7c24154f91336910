/**
 * Bad usage is found before anything starts and said in flags: the rules between flags (loopback
 * host, a relay key for `--tunnel synthtunnel`, `--install-cloudflared` only with cloudflared
 * tunnels), and the closest flag or command for a typo.
 */
import { describe, expect, it } from 'vitest'
import { SdkError } from '../errors'
import { parseCommand, type CliEnv, type ServeCommand } from './args'
import { serveOptions } from './serve'
import { closest, editDistance } from './suggest'

function usageMessage(argv: string[], env: CliEnv = {}): string {
  try {
    parseCommand(argv, env)
  } catch (err) {
    expect(err).toBeInstanceOf(SdkError)
    expect((err as SdkError).code).toBe('TASKAPP_ERR_CLI_USAGE')
    return (err as SdkError).message
  }
  throw new Error(`expected ${argv.join(' ')} to be rejected`)
}

describe('a typo gets the closest flag or command (2 edits at most)', () => {
  it.each([
    [['serve', 'a.ts', '--tunel', 'quick'], 'taskapp serve: unknown option --tunel; did you mean --tunnel?'],
    [
      ['serve', 'a.ts', '--relay-ur=http://x'],
      'taskapp serve: unknown option --relay-ur; did you mean --relay-url?',
    ],
    [['serve', 'a.ts', '--instal-cloudflared'], 'did you mean --install-cloudflared?'],
    [['check', 'http://127.0.0.1:1', '--josn'], 'taskapp check: unknown option --josn; did you mean --json?'],
    [['relay', '--lease-fil', 'x'], 'taskapp relay: unknown option --lease-fil; did you mean --lease-file?'],
    [['serv', 'a.ts'], 'taskapp: unknown command "serv"; did you mean serve?'],
    [['chek'], 'taskapp: unknown command "chek"; did you mean check?'],
    [['help', 'rely'], 'taskapp: unknown help topic "rely"; did you mean relay?'],
    [['--verison'], 'taskapp: unknown option "--verison"; did you mean --version?'],
  ])('%j', (argv, expected) => {
    const message = usageMessage(argv)
    expect(message).toContain(expected)
    expect(message).toMatch(/\nRun `taskapp( \w+)? --help` for usage\.$/)
  })

  it.each([
    [['serve', 'a.ts', '--frobnicate'], 'taskapp serve: unknown option --frobnicate.'],
    [['serve', 'a.ts', '-x'], 'taskapp serve: unknown option -x.'],
    [
      ['launch'],
      'taskapp: unknown command "launch"; use one of serve, check, relay, init, optimize, dev-backend.',
    ],
  ])('%j: nothing close, no guess', (argv, expected) => {
    const message = usageMessage(argv)
    expect(message.split('\n')[0]).toBe(expected)
  })

  it('edit distance counts insertions, deletions and substitutions', () => {
    expect(editDistance('tunel', 'tunnel')).toBe(1)
    expect(editDistance('josn', 'json')).toBe(2)
    expect(editDistance('', 'abc')).toBe(3)
    expect(editDistance('port', 'port')).toBe(0)
    expect(closest('prot', ['host', 'port'])).toBe('port')
    expect(closest('xyz', ['host', 'port'])).toBeUndefined()
  })
})

describe('rules between flags are usage errors (exit 2), worded in flags', () => {
  it('--host must be loopback unless --allow-non-loopback (serve and relay)', () => {
    const serve = usageMessage(['serve', 'a.ts', '--host', '0.0.0.0'])
    expect(serve).toContain(
      'taskapp serve: --host 0.0.0.0 is not a loopback address, so the task app would be reachable from ' +
        'other machines: use 127.0.0.1 (the default), or add --allow-non-loopback if you mean to expose it.',
    )
    expect(usageMessage(['relay', '--host', '10.1.2.3'])).toContain('so the relay would be reachable')
    expect(usageMessage(['relay'], { TASKAPP_RELAY_HOST: '0.0.0.0' })).toContain('--host 0.0.0.0')
    expect(usageMessage(['serve', 'a.ts', '--host', ' '])).toContain('--host must not be empty.')
    expect(parseCommand(['serve', 'a.ts', '--host', '0.0.0.0', '--allow-non-loopback'])).toMatchObject({
      host: '0.0.0.0',
      allowNonLoopback: true,
    })
    expect(parseCommand(['serve', 'a.ts', '--host', '127.0.0.2'])).toMatchObject({ host: '127.0.0.2' })
  })

  it('--tunnel synthtunnel needs a relay key, said for the relay it would use', () => {
    const none = usageMessage(['serve', 'a.ts', '--tunnel', 'synthtunnel'])
    expect(none).toContain(
      "--tunnel synthtunnel needs a relay and its key: for Synth's hosted relay set SYNTH_API_KEY",
    )
    expect(none).toContain('--relay-url <url> (or TASKAPP_RELAY_URL)')
    expect(none).toContain('For no tunnel, use --tunnel local.')
    expect(none).not.toMatch(/tunnelMode|relayApiKey|\(the default\)/)
    const own = usageMessage(['serve', 'a.ts', '--relay-url', 'http://127.0.0.1:8787'])
    expect(own).toContain(
      'the relay at http://127.0.0.1:8787 needs its key: --relay-api-key-file <path> or TASKAPP_RELAY_API_KEY',
    )
    expect(usageMessage(['serve', 'a.ts'], { TASKAPP_TUNNEL: 'synthtunnel' })).toContain(
      'needs a relay and its key',
    )
  })

  it('--install-cloudflared goes into the quick or named tunnel spec, and nowhere else', () => {
    const quick = parseCommand(['serve', 'a.ts', '-t', 'quick', '--install-cloudflared']) as ServeCommand
    expect(quick.tunnel).toEqual({ mode: 'quick', install: true })
    expect(serveOptions(quick).tunnel).toEqual({ mode: 'quick', install: true })
    const named = parseCommand(
      ['serve', 'a.ts', '-t', 'named', '--install-cloudflared', '--hostname', 'h.example.com'],
      { CLOUDFLARE_TUNNEL_TOKEN: 'tok' },
    ) as ServeCommand
    expect(named.tunnel).toMatchObject({ mode: 'named', install: true })
    // without the flag the spec is the mode's own default (no `install: false` in --json)
    expect((parseCommand(['serve', 'a.ts', '-t', 'quick']) as ServeCommand).tunnel).toEqual({ mode: 'quick' })
    expect(usageMessage(['serve', 'a.ts', '--install-cloudflared'])).toContain(
      'taskapp serve: --install-cloudflared only applies to --tunnel quick or named (the tunnel is local).',
    )
  })
})
