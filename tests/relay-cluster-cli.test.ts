/**
 * `taskapp relay` in cluster mode, real processes on a real redis-server (test-utils): two nodes
 * share leases through Redis, the cluster secret comes from a file and never shows in argv.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRedisServer } from '@taskapp/test-utils'
import { describe, expect, it, onTestFinished } from 'vitest'
import { REPO_ROOT, shellStatus, spawnTs } from './test-helpers'

const CLI = join(REPO_ROOT, 'packages/sdk/src/cli/cli.ts')

describe('taskapp relay --redis-url', () => {
  it('two nodes share leases; the secret file stays out of argv and output', async () => {
    await using redis = await startRedisServer()
    const dir = mkdtempSync(join(tmpdir(), 'taskapp-cluster-cli-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const secret = 'cli-cluster-secret-0123456789abcdef'
    const secretFile = join(dir, 'cluster-secret')
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 })
    const start = (id: string) =>
      spawnTs(
        CLI,
        [
          'relay',
          '--port',
          '0',
          '--redis-url',
          redis.url,
          '--cluster-secret-file',
          secretFile,
          '--node-id',
          id,
        ],
        { env: { TASKAPP_RELAY_API_KEYS: 'cluster-cli-key', TASKAPP_RELAY_CLUSTER_SECRET: undefined } },
      )
    await using a = start('node-a')
    await using b = start('node-b')
    const [, urlA] = await a.waitForLine(/^ {2}url: +(\S+)$/, 45_000)
    const [, urlB] = await b.waitForLine(/^ {2}url: +(\S+)$/, 45_000)
    await a.waitForLine(/^ {2}cluster: node node-a/)
    for (const p of [a, b]) {
      expect(readFileSync(`/proc/${p.pid}/cmdline`, 'utf8')).not.toContain(secret)
      expect(p.stdout() + p.stderr()).not.toContain(secret)
    }
    const created = await fetch(`${urlA}/api/v1/synthtunnel/leases`, {
      method: 'POST',
      headers: { authorization: 'Bearer cluster-cli-key' },
      body: '{}',
    })
    expect(created.status).toBe(201)
    const { lease_id } = (await created.json()) as { lease_id: string }
    const deleted = await fetch(`${urlB}/api/v1/synthtunnel/leases/${lease_id}`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer cluster-cli-key' },
    })
    expect(deleted.status).toBe(204) // node B knows node A's lease: it is in Redis
    a.child.kill('SIGTERM')
    expect(shellStatus(await a.exited)).toBe(143)
  })
})
