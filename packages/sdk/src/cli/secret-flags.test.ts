/**
 * Secret flags (issue 12): a `--<name>-file <path>` companion for every secret flag, read at
 * parse time from real temp files, its rules against the flag and the environment, and the
 * stderr warning when a secret is given on the command line.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { SdkError } from '../errors'
import { parseCommand, type CliEnv, type CheckCommand, type RelayCommand, type ServeCommand } from './args'
import { helpText } from './help'

const CHILD = join(import.meta.dirname, '..', 'fixtures', 'parse-unprivileged.ts')
const DIR = mkdtempSync(join(tmpdir(), 'taskapp-secret-flags-'))
afterAll(() => rmSync(DIR, { recursive: true, force: true }))

let files = 0
/** A new file holding `content`, mode 0600 unless told otherwise. */
function secretFile(content: string, mode = 0o600): string {
  const path = join(DIR, `secret-${(files += 1)}`)
  writeFileSync(path, content, { mode })
  chmodSync(path, mode) // the umask may have taken bits away
  return path
}

/** Parses `argv`, collecting the warnings the CLI would write to stderr. */
function parse(argv: string[], env: CliEnv = {}) {
  const warnings: string[] = []
  const cmd = parseCommand(argv, env, { warn: (line) => warnings.push(line) })
  return { cmd, warnings }
}

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

describe('--<name>-file companions', () => {
  it('serve: --api-key-file, --relay-api-key-file, --cloudflare-token-file read the file (one trailing newline trimmed)', () => {
    const app = secretFile('app-key-123\n')
    const relay = secretFile('relay-key-456\r\n')
    const { cmd, warnings } = parse([
      'serve',
      'a.ts',
      '--relay-url',
      'http://127.0.0.1:8787',
      '--relay-api-key-file',
      relay,
      '--api-key-file',
      app,
    ])
    expect(cmd).toMatchObject({
      apiKey: 'app-key-123',
      apiKeyFrom: 'file',
      tunnel: { mode: 'synthtunnel', relayApiKey: 'relay-key-456' },
    })
    expect(warnings).toEqual([])
    const token = secretFile('cf-token')
    const named = parse([
      'serve',
      'a.ts',
      '-t',
      'named',
      '--hostname',
      'h.example.com',
      '--cloudflare-token-file',
      token,
    ])
    expect((named.cmd as ServeCommand).tunnel).toEqual({
      mode: 'named',
      token: 'cf-token',
      hostname: 'h.example.com',
    })
  })

  it('relay --api-key-file: one key per line, blank lines and # comments ignored', () => {
    const keys = secretFile('# relay keys\nkey-one\n\n  key-two  \n   # old: key-zero\n')
    const { cmd, warnings } = parse(['relay', '--api-key-file', keys])
    expect((cmd as RelayCommand).apiKeys).toEqual(['key-one', 'key-two'])
    expect(warnings).toEqual([])
  })

  it('check: --api-key-file, and --header-file with one "Name: value" per line', () => {
    const key = secretFile('check-key\n')
    const headers = secretFile('X-SynthTunnel-Worker-Token: wt_abc\n# comment\nAccept: application/json\n')
    const { cmd, warnings } = parse([
      'check',
      'http://127.0.0.1:1',
      '--api-key-file',
      key,
      '--header-file',
      headers,
    ])
    expect(cmd as CheckCommand).toMatchObject({
      apiKey: 'check-key',
      headers: { 'X-SynthTunnel-Worker-Token': 'wt_abc', Accept: 'application/json' },
    })
    expect(warnings).toEqual([])
  })

  it('the file wins over the environment; the flag and its file together are a usage error', () => {
    const key = secretFile('from-file\n')
    expect(
      parse(['serve', 'a.ts', '--api-key-file', key], { ENVIRONMENT_API_KEY: 'from-env' }).cmd,
    ).toMatchObject({
      apiKey: 'from-file',
      apiKeyFrom: 'file',
    })
    expect(parse(['relay', '--api-key-file', key], { TASKAPP_RELAY_API_KEYS: 'e1,e2' }).cmd).toMatchObject({
      apiKeys: ['from-file'],
    })
    const both = usageError(['serve', 'a.ts', '--api-key', 'k', '--api-key-file', key])
    expect(both.message).toMatch(/^taskapp serve: --api-key-file and --api-key are both given; give one/)
    expect(both.message).toContain('taskapp serve --help')
    expect(usageError(['relay', '--api-key', 'k', '--api-key-file', key]).message).toMatch(
      /--api-key-file and --api-key are both given/,
    )
  })

  it("a key file is taken as explicit, like the flag: sent to Synth's hosted relay", () => {
    const key = secretFile('synth-from-file\n')
    const { cmd } = parse(['serve', 'a.ts', '-t', 'synthtunnel', '--relay-api-key-file', key], {
      TASKAPP_RELAY_API_KEY: 'self-hosted',
    })
    expect((cmd as ServeCommand).tunnel).toEqual({ mode: 'synthtunnel', relayApiKey: 'synth-from-file' })
  })

  it.each([
    { what: 'a missing file', path: () => join(DIR, 'no-such-file'), message: /does not exist/ },
    { what: 'a directory', path: () => DIR, message: /is a directory/ },
    { what: 'an empty file', path: () => secretFile(''), message: /is empty/ },
    { what: 'a file with only a newline', path: () => secretFile('\n'), message: /is empty/ },
    { what: 'a file of two lines', path: () => secretFile('a\nb\n'), message: /holds more than one line/ },
  ])('serve --api-key-file with $what: usage error naming the flag and the path', ({ path, message }) => {
    const file = path()
    const err = usageError(['serve', 'a.ts', '--api-key-file', file])
    expect(err.message).toContain(`--api-key-file ${file}`)
    expect(err.message).toMatch(message)
  })

  it.each([
    { what: 'an empty file', content: '', message: /is empty/ },
    {
      what: 'only comments',
      content: '# none yet\n\n',
      message: /holds nothing but blank lines and # comments/,
    },
  ])('relay --api-key-file with $what: usage error', ({ content, message }) => {
    const file = secretFile(content)
    const err = usageError(['relay', '--api-key-file', file])
    expect(err.message).toContain(`--api-key-file ${file}`)
    expect(err.message).toMatch(message)
  })

  // Root reads a file whatever its mode, so the parse runs in a child that drops to an
  // unprivileged user first (when started as root; as any other user it is that user already).
  it('a file of mode 000: usage error naming the flag and the path', () => {
    const file = secretFile('k\n', 0o000)
    const child = spawnSync(
      process.execPath,
      ['--conditions=@taskapp/source', '--import', 'tsx', CHILD, 'serve', 'a.ts', '--api-key-file', file],
      { encoding: 'utf8', timeout: 30_000 },
    )
    expect(child.stderr).toBe('')
    expect(child.stdout).toContain(`--api-key-file ${file} cannot be read (permission denied)`)
  })

  it.skipIf(process.platform !== 'linux')(
    'a file whose read fails (EIO): usage error naming the flag and the path',
    () => {
      // /proc/self/mem opens, but reading it from offset 0 fails with EIO, for root too
      const err = usageError(['serve', 'a.ts', '--api-key-file', '/proc/self/mem'])
      expect(err.message).toMatch(/^taskapp serve: --api-key-file \/proc\/self\/mem cannot be read: EIO/)
    },
  )

  it('a bad value in the file is reported against the file flag', () => {
    const headers = secretFile('no colon here\n')
    expect(usageError(['check', 'http://127.0.0.1:1', '--header-file', headers]).message).toMatch(
      /--header-file must look like "Name: value"/,
    )
  })

  it('warns when the file is readable by other users (like ssh), not when it is 0600', () => {
    const open = secretFile('k\n', 0o644)
    const { warnings } = parse(['serve', 'a.ts', '--api-key-file', open])
    expect(warnings).toEqual([
      `taskapp serve: warning: --api-key-file ${open} is readable by other users (mode 0644); run \`chmod 600 ${open}\`.`,
    ])
    const closed = secretFile('k\n', 0o600)
    expect(parse(['serve', 'a.ts', '--api-key-file', closed]).warnings).toEqual([])
  })

  it('--help lists each file companion right after its flag', () => {
    // the next entry after --api-key <key> (its help may wrap onto indented lines) is its file
    expect(helpText('serve')).toMatch(
      / {6}--api-key <key>[^\n]*(?:\n {30}[^\n]*)*\n {6}--api-key-file <path> +read --api-key from this file/,
    )
    expect(helpText('serve')).toMatch(/--relay-api-key-file <path>/)
    expect(helpText('serve')).toMatch(/--cloudflare-token-file <path>/)
    expect(helpText('relay')).toMatch(/--api-key-file <path> +read --api-key from this file, one per line/)
    expect(helpText('check')).toMatch(/--api-key-file <path>[\s\S]*--header-file <path>/)
  })
})

describe('a secret given as a flag: one warning line on stderr per flag', () => {
  it('relay --api-key (twice): one line naming the file flag and the env variable', () => {
    const { warnings } = parse(['relay', '--api-key', 'k1', '--api-key', 'k2'])
    expect(warnings).toEqual([
      'taskapp relay: warning: --api-key puts a secret in the process list (ps, /proc/<pid>/cmdline) ' +
        'for every local user to read; use --api-key-file <path> or TASKAPP_RELAY_API_KEYS instead.',
    ])
    expect(warnings.join('\n')).not.toMatch(/k1|k2/)
  })

  it('serve: one line per secret flag, none for other flags or for the environment', () => {
    const { warnings } = parse([
      'serve',
      'a.ts',
      '--relay-url',
      'http://127.0.0.1:8787',
      '--relay-api-key',
      'rk-secret',
      '--api-key',
      'ak-secret',
      '--port',
      '9000',
    ])
    expect(warnings).toHaveLength(2)
    expect(warnings[0]).toMatch(
      /^taskapp serve: warning: --relay-api-key puts a secret .*; use --relay-api-key-file <path> or TASKAPP_RELAY_API_KEY instead\.$/,
    )
    expect(warnings[1]).toMatch(
      /^taskapp serve: warning: --api-key puts .*--api-key-file <path> or ENVIRONMENT_API_KEY instead\.$/,
    )
    expect(warnings.join('\n')).not.toMatch(/rk-secret|ak-secret/)
    const named = parse(['serve', 'a.ts', '-t', 'named', '--hostname', 'h', '--cloudflare-token', 'cf'])
    expect(named.warnings).toEqual([expect.stringContaining('--cloudflare-token puts a secret')])
    expect(parse(['serve', 'a.ts'], { ENVIRONMENT_API_KEY: 'e', SYNTH_API_KEY: 's' }).warnings).toEqual([])
  })

  it('check --header warns only for a header that looks like a credential', () => {
    const header = (value: string) => parse(['check', 'http://127.0.0.1:1', '-H', value]).warnings
    expect(header('Accept: application/json')).toEqual([])
    expect(header('X-Trace: 1')).toEqual([])
    for (const credential of [
      'X-SynthTunnel-Worker-Token: wt_1',
      'Authorization: Bearer x',
      'X-API-Key: k',
      'Cookie: a=b',
    ]) {
      expect(header(credential), credential).toEqual([
        'taskapp check: warning: --header puts a secret in the process list (ps, /proc/<pid>/cmdline) ' +
          'for every local user to read; use --header-file <path> instead.',
      ])
    }
  })

  it('without a warn hook, nothing is written anywhere (parseCommand stays quiet)', () => {
    const stderr = vi.spyOn(process.stderr, 'write')
    const consoleWarn = vi.spyOn(console, 'warn')
    const consoleError = vi.spyOn(console, 'error')
    try {
      expect(parseCommand(['relay', '--api-key', 'k'])).toMatchObject({ apiKeys: ['k'] })
      expect(stderr).not.toHaveBeenCalled()
      expect(consoleWarn).not.toHaveBeenCalled()
      expect(consoleError).not.toHaveBeenCalled()
    } finally {
      stderr.mockRestore()
      consoleWarn.mockRestore()
      consoleError.mockRestore()
    }
  })
})

describe('file paths', () => {
  it('a relative path is read from the working directory', () => {
    const sub = join(DIR, 'sub')
    mkdirSync(sub, { recursive: true })
    writeFileSync(join(sub, 'key'), 'rel-key\n', { mode: 0o600 })
    const cwd = process.cwd()
    process.chdir(sub)
    try {
      expect(parse(['serve', 'a.ts', '--api-key-file', './key']).cmd).toMatchObject({ apiKey: 'rel-key' })
    } finally {
      process.chdir(cwd)
    }
  })
})
