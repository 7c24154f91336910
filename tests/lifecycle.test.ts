/**
 * End to end, real processes: a child process runs the example task app with InProcessTaskApp;
 * we signal it (or let the user's code crash) and check the exit status, that the port is free,
 * and that no process of its group (the cloudflared test double included) survives.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRelayServer } from '@taskapp/sdk'
import { describe, expect, it, onTestFinished } from 'vitest'
import { isProcessAlive as isAlive } from '@taskapp/test-utils'
import { REPO_ROOT, expectAllGone, groupMembers, portIsFree, shellStatus, spawnTs } from './test-helpers'

const FIXTURE = join(REPO_ROOT, 'tests/fixtures/task-app-process.ts')
// The cloudflared TEST DOUBLE shipped with @taskapp/tunnel-cloudflare (no real cloudflared exists
// on these machines): it really forwards HTTP on loopback and runs as a real grandchild process.
const CLOUDFLARED_DOUBLE = join(REPO_ROOT, 'packages/tunnel-cloudflare/src/fixtures/cloudflared-double.cjs')
const KEY = 'e2e-task-app-key'

interface Ready {
  pid: number
  port: number
  url: string
  localUrl: string
  headers: Record<string, string>
}

function tempPidFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'taskapp-e2e-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'cloudflared.pids')
}

function readPids(file: string): number[] {
  try {
    return readFileSync(file, 'utf8')
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number)
  } catch {
    return []
  }
}

async function startQuickTunnelApp(extra: string[] = []) {
  const pidFile = tempPidFile()
  const proc = spawnTs(FIXTURE, ['--tunnel', 'quick', '--cloudflared', CLOUDFLARED_DOUBLE, ...extra], {
    env: {
      CLOUDFLARED_DOUBLE_PID_FILE: pidFile,
      CLOUDFLARED_DOUBLE_URL_DELAY_MS: '20',
      CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '20',
    },
  })
  return { proc, ready: await readyOf(proc), pidFile }
}

/** The child's READY line. */
async function readyOf(proc: ReturnType<typeof spawnTs>): Promise<Ready> {
  const [, json] = await proc.waitForLine(/^READY (.*)$/, 45_000)
  return JSON.parse(json!) as Ready
}

/** The fixture behind `relay`; the relay's API key goes through the environment, not argv. */
function spawnBehindRelay(relay: { url: string; apiKey: string }) {
  return spawnTs(FIXTURE, ['--tunnel', 'synthtunnel', '--relay-url', relay.url], {
    env: { E2E_RELAY_API_KEY: relay.apiKey },
  })
}

describe('InProcessTaskApp in a child process, quick tunnel through the cloudflared double', () => {
  it.each([
    { signal: 'SIGINT' as const, code: 130 },
    { signal: 'SIGTERM' as const, code: 143 },
  ])('$signal: exits $code, frees the port, leaves no process behind', async ({ signal, code }) => {
    const { proc, ready, pidFile } = await startQuickTunnelApp()
    await using _proc = proc
    // It really serves, and it really has a cloudflared (double) child running.
    const health = await fetch(`${ready.localUrl}/health`, { headers: { 'x-api-key': KEY } })
    expect(health.status).toBe(200)
    expect(ready.url).toMatch(/^https:\/\/[a-z0-9-]+\.trycloudflare\.com$/)
    expect(await portIsFree(ready.port)).toBe(false)
    const cloudflaredPids = readPids(pidFile)
    expect(cloudflaredPids.length).toBeGreaterThan(0)
    expect(cloudflaredPids.every(isAlive)).toBe(true)
    expect(groupMembers(proc.pid).length).toBeGreaterThan(1)

    proc.child.kill(signal)
    // InProcessTaskApp stops everything, then re-raises the signal: the shell sees 128 + signo.
    expect(shellStatus(await proc.exited)).toBe(code)
    await expectAllGone(proc, ready.port, cloudflaredPids)
  })

  it('an uncaught exception in user code after start: the port is released and no child survives', async () => {
    const { proc, ready, pidFile } = await startQuickTunnelApp(['--crash-after-start'])
    await using _proc = proc
    const exit = await proc.exited
    expect(exit.code).toBe(1)
    expect(proc.stderr()).toContain('e2e: an uncaught exception in user code after start')
    await expectAllGone(proc, ready.port, readPids(pidFile))
  })
})

describe('InProcessTaskApp in a child process, relay tunnel to a relay in this process', () => {
  it('serves through the relay, then SIGTERM: exits 143, port free, the relay sees the agent leave', async () => {
    await using relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
    await using proc = spawnBehindRelay(relay)
    const ready = await readyOf(proc)
    expect(ready.url.startsWith(`${relay.url}/s/rt_`)).toBe(true)
    const headers = { ...ready.headers, 'x-api-key': KEY, 'content-type': 'application/json' }
    const res = await fetch(`${ready.url}/rollout`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        trace_correlation_id: 'e2e-1',
        env: { seed: 1, config: { split: 'test' } },
        policy: { config: {} },
      }),
    })
    expect(res.status).toBe(200)
    expect(((await res.json()) as { trace_correlation_id: string }).trace_correlation_id).toBe('e2e-1')
    expect(relay.stats().agents).toBe(1)

    proc.child.kill('SIGTERM')
    expect(shellStatus(await proc.exited)).toBe(143)
    await expectAllGone(proc, ready.port, [])
    await expect
      .poll(() => relay.stats().agents, {
        timeout: 10_000,
        interval: 25,
        message: 'the relay to drop the agent',
      })
      .toBe(0)
  })

  it('SIGINT while rollouts are in flight: exits 130 and nothing is left', async () => {
    await using relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
    await using proc = spawnBehindRelay(relay)
    const ready = await readyOf(proc)
    const headers = { ...ready.headers, 'x-api-key': KEY, 'content-type': 'application/json' }
    const inflight = Array.from({ length: 20 }, (_, seed) =>
      fetch(`${ready.url}/rollout`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ trace_correlation_id: `f${seed}`, env: { seed }, policy: { config: {} } }),
      }).then(
        (r) => r.status,
        () => 0,
      ),
    )
    proc.child.kill('SIGINT')
    expect(shellStatus(await proc.exited)).toBe(130)
    const statuses = await Promise.all(inflight)
    // Every call settled (none hangs): it completed (200), or failed cleanly: the agent dropped
    // mid-request (502), the agent was gone (503), the lease was already deleted (404), or the
    // connection dropped (0).
    expect(statuses.filter((s) => ![0, 200, 404, 502, 503].includes(s))).toEqual([])
    await expectAllGone(proc, ready.port, [])
  })
})
