/**
 * End to end, real processes: container auth (the newer Synth generation's signed tokens) through
 * a relay tunnel. A child process runs the example task app with InProcessTaskApp behind a relay
 * in this process, trusting a key pair generated here (SYNTH_CONTAINER_TRUSTED_PUBKEYS); we call
 * it through the tunnel URL with the worker token and tokens signed here, then SIGTERM it.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { createRelayServer, generateContainerKeyPair, signContainerToken } from '@taskapp/sdk'
import type { ContainerKeyPair } from '@taskapp/sdk'
import { describe, expect, it } from 'vitest'
import { REPO_ROOT, expectAllGone, shellStatus, spawnTs } from './test-helpers'

const FIXTURE = join(REPO_ROOT, 'tests/fixtures/task-app-process.ts')
const KID = 'e2e'

interface Ready {
  pid: number
  port: number
  url: string
  localUrl: string
  headers: Record<string, string>
  hasApiKey: boolean
}

/**
 * Variables of the developer's shell the child could read (task-app keys, container auth,
 * relay, tunnel): left out of its environment (an `undefined` value drops a variable; the readers
 * also treat blank values as unset), so only what a test passes reaches the child.
 */
const INHERITED = /^(?:SYNTH_|TASKAPP_|ENVIRONMENT_API_KEY|DEV_ENVIRONMENT_API_KEY$|dev_environment_api_key$)/

function childEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const name of Object.keys(process.env)) if (INHERITED.test(name)) env[name] = undefined
  return { ...env, ...vars }
}

/**
 * The fixture behind `relay`, trusting `pair`; every secret goes through the environment, never
 * argv (a command line is visible in ps).
 */
function spawnBehindRelay(
  relay: { url: string; apiKey: string },
  auth: 'env' | 'tokens-only',
  vars: Record<string, string>,
) {
  return spawnTs(FIXTURE, ['--tunnel', 'synthtunnel', '--relay-url', relay.url, '--auth', auth], {
    env: childEnv({ E2E_RELAY_API_KEY: relay.apiKey, ...vars }),
  })
}

async function readyOf(proc: ReturnType<typeof spawnTs>): Promise<Ready> {
  const [, json] = await proc.waitForLine(/^READY (.*)$/, 45_000)
  return JSON.parse(json!) as Ready
}

function sign(pair: ContainerKeyPair, scopes: string[]): Promise<string> {
  return signContainerToken({ privateKey: pair.privateKey, kid: KID, scopes, ttlMs: 60_000 })
}

function bearer(token: string): Record<string, string> {
  return { 'X-Synth-Container-Authorization': `Bearer ${token}` }
}

interface Answer {
  status: number
  body: {
    trace_correlation_id?: string
    taskset?: unknown
    healthy?: boolean
    detail?: { error?: { code?: string; message?: string } }
  }
}

/** Calls the app through the tunnel with the worker token plus `auth`. */
async function call(
  ready: Ready,
  path: string,
  auth: Record<string, string>,
  rollout?: string,
): Promise<Answer> {
  const res = await fetch(`${ready.url}${path}`, {
    method: rollout === undefined ? 'GET' : 'POST',
    headers: {
      ...ready.headers,
      ...auth,
      ...(rollout !== undefined && { 'content-type': 'application/json' }),
    },
    ...(rollout !== undefined && {
      body: JSON.stringify({
        trace_correlation_id: rollout,
        env: { seed: 1, config: { split: 'test' } },
        policy: { config: {} },
      }),
    }),
  })
  return { status: res.status, body: (await res.json()) as Answer['body'] }
}

/** SIGTERM: InProcessTaskApp stops everything and re-raises (143); port, group and agent gone. */
async function stopAndCheck(
  proc: ReturnType<typeof spawnTs>,
  ready: Ready,
  relay: { stats(): { agents: number } },
): Promise<void> {
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
}

describe('container auth end to end: a task app in a child process, behind a relay in this process', () => {
  it('tokens only (no API key anywhere): signed tokens pass, the worker token alone or with a key does not', async () => {
    const pair = generateContainerKeyPair({ kid: KID })
    await using relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
    await using proc = spawnBehindRelay(relay, 'tokens-only', {
      SYNTH_CONTAINER_TRUSTED_PUBKEYS: pair.trusted,
    })
    const ready = await readyOf(proc)
    expect(ready.url.startsWith(`${relay.url}/s/rt_`)).toBe(true)
    expect(Object.keys(ready.headers).map((h) => h.toLowerCase())).toEqual(['x-synthtunnel-worker-token'])
    expect(ready.hasApiKey).toBe(false)

    const rollout = await call(ready, '/rollout', bearer(await sign(pair, ['rollout'])), 'e2e-token-1')
    expect(rollout).toMatchObject({ status: 200, body: { trace_correlation_id: 'e2e-token-1' } })
    const info = await call(ready, '/task_info', bearer(await sign(pair, ['task_info'])))
    expect(info.status).toBe(200)
    expect(info.body.taskset).toBeDefined()
    expect(await call(ready, '/health', {})).toMatchObject({ status: 200, body: { healthy: true } })

    // The worker token alone: the agent injects nothing, so the app sees no credential.
    for (const path of ['/rollout', '/task_info']) {
      const alone = await call(ready, path, {}, path === '/rollout' ? 'e2e-alone' : undefined)
      expect(alone.status, path).toBe(401)
      expect(alone.body.detail?.error?.code, path).toBe('auth_missing')
    }
    // A token for another scope, or from a key the app does not trust.
    const wrongScope = await call(ready, '/rollout', bearer(await sign(pair, ['task_info'])), 'e2e-scope')
    expect(wrongScope.status).toBe(401)
    expect(wrongScope.body.detail?.error).toMatchObject({ code: 'auth_invalid', message: /"rollout" scope/ })
    const stranger = generateContainerKeyPair({ kid: KID })
    const untrusted = await call(
      ready,
      '/rollout',
      bearer(await sign(stranger, ['rollout'])),
      'e2e-untrusted',
    )
    expect(untrusted.status).toBe(401)
    expect(untrusted.body.detail?.error?.code).toBe('auth_invalid')
    // Any X-API-Key: no key exists to match (and the agent added none).
    const withKey = await call(ready, '/rollout', { 'X-API-Key': 'e2e-any-key' }, 'e2e-any-key')
    expect(withKey.status).toBe(401)
    expect(withKey.body.detail?.error?.code).toBe('auth_invalid')

    await stopAndCheck(proc, ready, relay)
  })

  it('both generations (ENVIRONMENT_API_KEY and trusted keys): the agent injects no key; app.headers (with the key) or a token passes', async () => {
    const pair = generateContainerKeyPair({ kid: KID })
    const apiKey = `e2e-${randomBytes(12).toString('hex')}`
    await using relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
    await using proc = spawnBehindRelay(relay, 'env', {
      ENVIRONMENT_API_KEY: apiKey,
      SYNTH_CONTAINER_TRUSTED_PUBKEYS: pair.trusted,
    })
    const ready = await readyOf(proc)
    expect(ready.hasApiKey).toBe(true)
    // app.headers lists the key next to the worker token, so a caller without a token gets in.
    expect(ready.headers['X-API-Key']).toBe(apiKey)
    const asListed = await call(ready, '/rollout', {}, 'e2e-listed')
    expect(asListed).toMatchObject({ status: 200, body: { trace_correlation_id: 'e2e-listed' } })

    const workerTokenOnly: Ready = {
      ...ready,
      headers: Object.fromEntries(Object.entries(ready.headers).filter(([name]) => name !== 'X-API-Key')),
    }
    const alone = await call(workerTokenOnly, '/rollout', {}, 'e2e-alone')
    expect(alone.status).toBe(401)
    expect(alone.body.detail?.error?.code).toBe('auth_missing')
    const wrongKey = await call(ready, '/rollout', { 'X-API-Key': 'e2e-wrong-key' }, 'e2e-wrong-key')
    expect(wrongKey.status).toBe(401)
    expect(wrongKey.body.detail?.error?.code).toBe('auth_invalid')
    const withKey = await call(ready, '/rollout', { 'X-API-Key': apiKey }, 'e2e-key')
    expect(withKey).toMatchObject({ status: 200, body: { trace_correlation_id: 'e2e-key' } })
    const withToken = await call(ready, '/rollout', bearer(await sign(pair, ['rollout'])), 'e2e-token-2')
    expect(withToken).toMatchObject({ status: 200, body: { trace_correlation_id: 'e2e-token-2' } })
    expect(await call(ready, '/health', {})).toMatchObject({ status: 200, body: { healthy: true } })

    await stopAndCheck(proc, ready, relay)
  })
})
