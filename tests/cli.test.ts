/**
 * End to end, real processes: the `taskapp` CLI (run from source with tsx) serving the example
 * task app file, checked and called through the printed URL, stopped with Ctrl+C (SIGINT).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRelayServer, generateContainerKeyPair, signContainerToken } from '@taskapp/sdk'
import { describe, expect, it, onTestFinished } from 'vitest'
import { REPO_ROOT, expectAllGone, groupMembers, portIsFree, shellStatus, spawnTs } from './test-helpers'

const CLI = join(REPO_ROOT, 'packages/sdk/src/cli/cli.ts')
const EXAMPLE = 'apps/example/src/task-app.ts'

interface Printed {
  url: string
  local: string
  headers: Record<string, string>
}

/** Reads the block `taskapp serve` prints on stdout once running. */
function parseServeOutput(stdout: string): Printed {
  const url = /^ {2}url: +(\S+)$/m.exec(stdout)?.[1]
  const local = /^ {2}local: +(\S+)$/m.exec(stdout)?.[1]
  if (url === undefined || local === undefined) throw new Error(`no url/local line in:\n${stdout}`)
  const headers: Record<string, string> = {}
  for (const m of stdout.matchAll(/^ {2}header: ([A-Za-z0-9-]+): (\S+)$/gm)) headers[m[1]!] = m[2]!
  return { url, local, headers }
}

describe('taskapp serve (the example file)', () => {
  it('relay tunnel: prints URL and headers, serves rollouts through the URL, Ctrl+C stops cleanly', async () => {
    await using relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
    await using cli = spawnTs(CLI, ['serve', EXAMPLE, '--port', '0', '--relay-url', relay.url], {
      env: { TASKAPP_RELAY_API_KEY: relay.apiKey },
    })
    await cli.waitForLine(/^Press Ctrl\+C to stop\.$/, 45_000)
    const printed = parseServeOutput(cli.stdout())
    expect(printed.url.startsWith(`${relay.url}/s/rt_`)).toBe(true)
    // A key was generated, but the relay agent adds it to every call: the worker token is all a
    // caller sends, and the printed headers alone serve the calls below.
    expect(Object.keys(printed.headers)).toEqual(['X-SynthTunnel-Worker-Token'])
    expect(cli.stdout()).not.toContain('X-API-Key')
    expect(cli.stderr()).toMatch(/… starting apps\/example\/src\/task-app\.ts \(synthtunnel tunnel\)/)
    expect(cli.stderr()).toMatch(/✓ starting .*: http:\/\/127\.0\.0\.1:\d+\/s\/rt_\S+ \(\d+ ms\)/)

    const health = await fetch(`${printed.url}/health`, { headers: printed.headers })
    expect(health.status).toBe(200)
    const rollout = await fetch(`${printed.url}/rollout`, {
      method: 'POST',
      headers: { ...printed.headers, 'content-type': 'application/json' },
      body: JSON.stringify({
        trace_correlation_id: 'cli-1',
        env: { seed: 2, config: { split: 'test' } },
        policy: { config: {} },
      }),
    })
    expect(rollout.status).toBe(200)
    const body = (await rollout.json()) as { reward_info: { outcome_reward: number } }
    expect([0, 1]).toContain(body.reward_info.outcome_reward)
    // Without the worker token the relay refuses the call.
    const refused = await fetch(`${printed.url}/health`)
    expect(refused.status).toBe(401)
    expect(await refused.json()).toMatchObject({
      code: 'TUNNEL_AUTH_REQUIRED',
      title: 'Worker token required',
    })

    const port = Number(new URL(printed.local).port)
    expect(await portIsFree(port)).toBe(false)
    cli.child.kill('SIGINT')
    expect(shellStatus(await cli.exited)).toBe(130)
    expect(cli.stderr()).toMatch(/✓ stopping \(SIGINT\)/)
    await expectAllGone(cli, port)
    await expect
      .poll(() => relay.stats().agents, {
        timeout: 10_000,
        interval: 25,
        message: 'the relay to drop the agent',
      })
      .toBe(0)
  })

  it('local tunnel with --json and a given key: prints one JSON line, SIGTERM exits 143', async () => {
    await using cli = spawnTs(CLI, [
      'serve',
      EXAMPLE,
      '--port',
      '0',
      '--tunnel',
      'local',
      '--api-key',
      'cli-json-key',
      '--json',
    ])
    const [line] = await cli.waitForLine(/^\{.*\}$/, 45_000)
    const report = JSON.parse(line) as {
      url: string
      port: number
      tunnelMode: string
      tunnel: { mode: string }
      headers: object
      withheldHeaders: string[]
      apiKeySource: string
    }
    // The app wants X-API-Key; its value is the key the user gave, so it is named, not echoed.
    expect(report).toMatchObject({
      tunnelMode: 'local',
      tunnel: { mode: 'local' },
      headers: {},
      withheldHeaders: ['X-API-Key'],
      apiKeySource: 'flag',
    })
    expect(report.url).toBe(`http://127.0.0.1:${report.port}`)
    expect(cli.stdout()).not.toContain('cli-json-key') // a key the user gave is never echoed
    const info = await fetch(`${report.url}/info`, { headers: { 'X-API-Key': 'cli-json-key' } })
    expect(info.status).toBe(200)
    cli.child.kill('SIGTERM')
    expect(shellStatus(await cli.exited)).toBe(143)
    await expect
      .poll(() => portIsFree(report.port), {
        timeout: 10_000,
        interval: 25,
        message: `port ${report.port} to be free`,
      })
      .toBe(true)
  })

  it('--container-keys: token-only app, the printout says the backend signs its own tokens, SIGINT exits 130', async () => {
    const pair = generateContainerKeyPair({ kid: 'cli' })
    // A public key is no secret: it may go on the command line.
    await using cli = spawnTs(CLI, ['serve', EXAMPLE, '--port', '0', '--container-keys', pair.trusted], {
      env: { ENVIRONMENT_API_KEY: undefined, SYNTH_CONTAINER_AUTH_MODE: undefined },
    })
    await cli.waitForLine(/^Press Ctrl\+C to stop\.$/, 45_000)
    const printed = parseServeOutput(cli.stdout())
    // No key anywhere and container keys set: none generated, so no header to hand over.
    expect(printed.headers).toEqual({})
    expect(cli.stdout()).toMatch(/^ {2}tokens: X-Synth-Container-Authorization: signed by Synth's backend/m)
    const missing = await fetch(`${printed.url}/task_info`)
    expect(missing.status).toBe(401)
    expect(((await missing.json()) as { detail: { error: { code: string } } }).detail.error.code).toBe(
      'auth_missing',
    )
    const token = await signContainerToken({
      privateKey: pair.privateKey,
      kid: 'cli',
      scopes: ['task_info'],
      ttlMs: 60_000,
    })
    const signed = await fetch(`${printed.url}/task_info`, {
      headers: { 'X-Synth-Container-Authorization': `Bearer ${token}` },
    })
    expect(signed.status).toBe(200)
    cli.child.kill('SIGINT')
    expect(shellStatus(await cli.exited)).toBe(130)
  })

  it('a file that does not exist: exit 1 with the reason, nothing left running', async () => {
    await using cli = spawnTs(CLI, [
      'serve',
      'apps/example/src/no-such-file.ts',
      '--port',
      '0',
      '--tunnel',
      'local',
    ])
    const exit = await cli.exited
    expect(exit.code).toBe(1)
    expect(cli.stderr()).toMatch(/TASKAPP_ERR_TASK_APP_NOT_FOUND/)
    expect(cli.stderr()).toContain('no-such-file.ts')
    expect(groupMembers(cli.pid)).toEqual([])
  })
})

describe('taskapp check / relay / usage', () => {
  it('check: 0 when healthy (prints task and dataset), 1 when the key is wrong or nothing listens', async () => {
    await using app = spawnTs(CLI, [
      'serve',
      EXAMPLE,
      '--port',
      '0',
      '--tunnel',
      'local',
      '--api-key',
      'check-key',
      '--json',
    ])
    const [line] = await app.waitForLine(/^\{.*\}$/, 45_000)
    const { url, port } = JSON.parse(line) as { url: string; port: number }

    await using ok = spawnTs(CLI, ['check', url, '--api-key', 'check-key'])
    expect((await ok.exited).code).toBe(0)
    expect(ok.stdout()).toMatch(/✓ healthy +http:\/\/127\.0\.0\.1:\d+\/health +HTTP 200/)
    expect(ok.stdout()).toContain('task:    Support ticket routing (ticket-routing)')

    await using wrong = spawnTs(CLI, ['check', url, '--api-key', 'nope', '--json'])
    expect((await wrong.exited).code).toBe(1)
    expect(JSON.parse(wrong.stdout()) as object).toMatchObject({
      healthy: false,
      status: 400,
      reason: 'api_key_refused',
    })

    app.child.kill('SIGINT')
    expect(shellStatus(await app.exited)).toBe(130)
    await expect
      .poll(() => portIsFree(port), { timeout: 10_000, interval: 25, message: `port ${port} to be free` })
      .toBe(true)
    await using dead = spawnTs(CLI, ['check', url, '--timeout', '2000'])
    expect((await dead.exited).code).toBe(1)
    expect(dead.stdout()).toMatch(
      /✗ unhealthy .*nothing is listening at 127\.0\.0\.1:\d+ \(connection refused\)/,
    )
  })

  it('relay: serves /health, logs one DEBUG line per request with -v, SIGTERM exits 143', async () => {
    await using relay = spawnTs(CLI, ['relay', '--port', '0', '--api-key', 'relay-cli-key', '-v'])
    const [, url] = await relay.waitForLine(/^ {2}url: +(\S+)$/, 45_000)
    await relay.waitForLine(/^Press Ctrl\+C to stop\.$/)
    expect(relay.stdout()).not.toContain('relay-cli-key')
    const res = await fetch(`${url}/health`)
    expect(res.status).toBe(200)
    const lease = await fetch(`${url}/api/v1/synthtunnel/leases`, {
      method: 'POST',
      headers: { authorization: 'Bearer wrong' },
    })
    expect(lease.status).toBe(401)
    await expect
      .poll(() => (relay.stderr().match(/DEBUG relay request /g) ?? []).length, {
        timeout: 10_000,
        interval: 25,
        message: 'two DEBUG request lines',
      })
      .toBeGreaterThanOrEqual(2)
    expect(relay.stderr()).toMatch(/DEBUG relay request \{"method":"GET","path":"\/health","status":200/)
    const port = Number(new URL(url!).port)
    relay.child.kill('SIGTERM')
    expect(shellStatus(await relay.exited)).toBe(143)
    await expect
      .poll(() => portIsFree(port), { timeout: 10_000, interval: 25, message: `port ${port} to be free` })
      .toBe(true)
  })

  it('relay --admin-key-file --admin-port: prints where the status page and metrics are, never the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskapp-relay-admin-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const keyFile = join(dir, 'admin-key')
    const adminKey = 'cli-admin-key-0123456789'
    writeFileSync(keyFile, `${adminKey}\n`, { mode: 0o600 })
    const args = ['relay', '--port', '0', '--admin-port', '0', '--admin-key-file', keyFile]
    await using relay = spawnTs(CLI, args)
    const [, url] = await relay.waitForLine(/^ {2}url: +(\S+)$/, 45_000)
    const [, status] = await relay.waitForLine(/^ {2}status: +(\S+)\/admin /)
    const [, metrics] = await relay.waitForLine(/^ {2}metrics: +(\S+)\/metrics /)
    await relay.waitForLine(/^Press Ctrl\+C to stop\.$/)
    expect(status).toBe(metrics)
    expect(status).not.toBe(url)
    expect(relay.stdout() + relay.stderr()).not.toContain(adminKey)
    const scraped = await fetch(`${metrics}/metrics`)
    expect(scraped.status).toBe(200)
    expect(await scraped.text()).toContain('taskapp_relay_agents_attached 0')
    expect((await fetch(`${url}/admin/status.json`)).status).toBe(401)
    const page = await fetch(`${url}/admin/status.json`, { headers: { authorization: `Bearer ${adminKey}` } })
    expect(page.status).toBe(200)
    relay.child.kill('SIGTERM')
    expect(shellStatus(await relay.exited)).toBe(143)
  })

  it('relay --lease-file: killed with SIGKILL and started again on the same port, it still knows its leases', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskapp-relay-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const leaseFile = join(dir, 'leases.json')
    const args = (port: string) => [
      'relay',
      '--port',
      port,
      '--api-key',
      'relay-cli-key',
      '--lease-file',
      leaseFile,
    ]
    await using first = spawnTs(CLI, args('0'))
    const [, url] = await first.waitForLine(/^ {2}url: +(\S+)$/, 45_000)
    const created = await fetch(`${url}/api/v1/synthtunnel/leases`, {
      method: 'POST',
      headers: { authorization: 'Bearer relay-cli-key' },
      body: '{}',
    })
    expect(created.status).toBe(201)
    const lease = (await created.json()) as { public_url: string; worker_token: string }
    const call = () =>
      fetch(`${lease.public_url}/health`, { headers: { 'x-synthtunnel-worker-token': lease.worker_token } })
    // known lease, no agent attached: 503, not 404
    expect((await call()).status).toBe(503)
    const port = new URL(url!).port
    first.child.kill('SIGKILL')
    await first.exited
    await expect
      .poll(() => portIsFree(Number(port)), {
        timeout: 10_000,
        interval: 25,
        message: `port ${port} to be free`,
      })
      .toBe(true)
    await using second = spawnTs(CLI, args(port))
    await second.waitForLine(/^Press Ctrl\+C to stop\.$/, 45_000)
    const after = await call()
    expect(after.status).toBe(503)
    expect(((await after.json()) as { code: string }).code).toBe('TUNNEL_AGENT_OFFLINE')
    second.child.kill('SIGTERM')
    expect(shellStatus(await second.exited)).toBe(143)
  })

  it.each([
    {
      argv: ['serve', EXAMPLE, '--port', 'abc'],
      message: /taskapp serve: --port must be 0 \(any free port\) or an integer/,
    },
    {
      argv: ['serve', EXAMPLE, '--tunnel', 'ngrok'],
      message: /--tunnel must be one of local, quick, named, synthtunnel, preconfigured/,
    },
    { argv: ['check'], message: /taskapp check: missing task app URL/ },
    { argv: ['relay', '--nope'], message: /taskapp relay: unknown option --nope\./ },
    { argv: ['launch'], message: /unknown command "launch"/ },
  ])('bad usage $argv: exit 2 with a clear message', async ({ argv, message }) => {
    await using cli = spawnTs(CLI, argv)
    expect((await cli.exited).code).toBe(2)
    expect(cli.stderr()).toMatch(message)
    expect(cli.stderr()).toMatch(/Run `taskapp( \w+)? --help` for usage\./)
    expect(cli.stdout()).toBe('')
  })

  it.each([['--help'], ['serve', '--help'], ['check', '-h'], ['help', 'relay']])(
    '%s: exit 0 with usage',
    async (...argv) => {
      await using cli = spawnTs(CLI, argv)
      expect((await cli.exited).code).toBe(0)
      expect(cli.stdout()).toMatch(/Usage:/)
    },
  )
})
