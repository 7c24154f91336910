/**
 * Secrets on the command line (issue 12), with real processes: `taskapp relay --api-key-file`
 * keeps the key out of `/proc/<pid>/cmdline` and the key works; `--api-key K` warns on stderr.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { REPO_ROOT, portIsFree, shellStatus, spawnTs } from './test-helpers'

const CLI = join(REPO_ROOT, 'packages/sdk/src/cli/cli.ts')
const EXAMPLE = 'apps/example/src/task-app.ts'

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'taskapp-secrets-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The argv of a live process, as every local user can read it. */
function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
}

const createLease = (url: string, key: string) =>
  fetch(`${url}/api/v1/synthtunnel/leases`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}` },
    body: '{}',
  })

describe('secret flags in real processes', () => {
  it('relay --api-key-file: the key is not in /proc/<pid>/cmdline, leases with it get 201, no warning', async () => {
    const dir = tempDir()
    const key = 'relay-file-key-0123456789'
    const keyFile = join(dir, 'relay-key')
    writeFileSync(keyFile, `# the relay's key\n${key}\n`, { mode: 0o600 })
    await using relay = spawnTs(CLI, ['relay', '--port', '0', '--api-key-file', keyFile], {
      env: { TASKAPP_RELAY_API_KEYS: undefined },
    })
    const [, url] = await relay.waitForLine(/^ {2}url: +(\S+)$/, 45_000)
    await relay.waitForLine(/^Press Ctrl\+C to stop\.$/)

    const argv = cmdline(relay.pid)
    expect(argv).toContain(keyFile)
    expect(argv.join(' ')).not.toContain(key)
    expect(relay.stdout()).not.toContain(key)
    expect(relay.stderr()).not.toMatch(/warning/)

    expect((await createLease(url!, key)).status).toBe(201)
    expect((await createLease(url!, 'wrong')).status).toBe(401)

    const port = Number(new URL(url!).port)
    relay.child.kill('SIGTERM')
    expect(shellStatus(await relay.exited)).toBe(143)
    await expect
      .poll(() => portIsFree(port), { timeout: 10_000, interval: 25, message: `port ${port} to be free` })
      .toBe(true)
  })

  it('relay --api-key K: a warning on stderr naming --api-key-file and the env variable, the key still works', async () => {
    const key = 'relay-flag-key-0123456789'
    await using relay = spawnTs(CLI, ['relay', '--port', '0', '--api-key', key])
    const [, url] = await relay.waitForLine(/^ {2}url: +(\S+)$/, 45_000)
    expect(relay.stderr()).toContain(
      'taskapp relay: warning: --api-key puts a secret in the process list (ps, /proc/<pid>/cmdline) ' +
        'for every local user to read; use --api-key-file <path> or TASKAPP_RELAY_API_KEYS instead.\n',
    )
    expect(relay.stderr()).not.toContain(key)
    // what the warning is about: the key is there for anyone to read
    expect(cmdline(relay.pid)).toContain(key)
    expect((await createLease(url!, key)).status).toBe(201)
    relay.child.kill('SIGTERM')
    expect(shellStatus(await relay.exited)).toBe(143)
  })

  it('serve --api-key-file and check --api-key-file: the app takes the key, neither argv holds it', async () => {
    const dir = tempDir()
    const key = 'app-file-key-0123456789'
    const keyFile = join(dir, 'app-key')
    writeFileSync(keyFile, `${key}\n`, { mode: 0o600 })
    const env = { ENVIRONMENT_API_KEY: undefined }
    await using app = spawnTs(
      CLI,
      ['serve', EXAMPLE, '--port', '0', '--tunnel', 'local', '--api-key-file', keyFile, '--json'],
      { env },
    )
    const [line] = await app.waitForLine(/^\{.*\}$/, 45_000)
    const report = JSON.parse(line) as { url: string; apiKeySource: string; headers: object }
    expect(report).toMatchObject({ apiKeySource: 'file', headers: {} })
    expect(cmdline(app.pid).join(' ')).not.toContain(key)
    expect(app.stdout()).not.toContain(key)
    expect(app.stderr()).not.toMatch(/warning/)
    expect((await fetch(`${report.url}/info`, { headers: { 'X-API-Key': key } })).status).toBe(200)

    await using check = spawnTs(CLI, ['check', report.url, '--api-key-file', keyFile], { env })
    expect((await check.exited).code).toBe(0)
    expect(check.stdout()).toMatch(/✓ healthy/)
    expect(check.stderr()).toBe('')

    app.child.kill('SIGINT')
    expect(shellStatus(await app.exited)).toBe(130)
  })

  it('relay --api-key-file with a missing file: exit 2 naming the flag and the path, nothing started', async () => {
    const missing = join(tempDir(), 'no-such-key')
    await using relay = spawnTs(CLI, ['relay', '--port', '0', '--api-key-file', missing])
    expect((await relay.exited).code).toBe(2)
    expect(relay.stderr()).toMatch(new RegExp(`^taskapp relay: --api-key-file ${missing} does not exist`))
    expect(relay.stdout()).toBe('')
  })
})
