/**
 * The root README's environment table lists exactly the variables the packages read (found by
 * scanning their sources, plus the CLI's flag tables), and every layer reads the task app's key
 * the same way.
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createRelayServer,
  createTaskApp,
  environmentApiKey,
  environmentApiKeys,
  InProcessTaskApp,
  localApiKeysFromEnv,
  synthTunnel,
} from '@taskapp/sdk'
import { listenLoopback } from '@taskapp/test-utils'
import { parseCommand } from '../packages/sdk/src/cli/args'
import { CHECK_FLAGS, RELAY_FLAGS, SERVE_FLAGS } from '../packages/sdk/src/cli/flags'
import { envNamesIn, envReaders } from './env-scan'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** The variable names in the first column of the README's "Environment variables" table. */
async function readmeNames(): Promise<string[]> {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  const start = readme.search(/^## Environment variables$/m)
  expect(start, 'README.md has an "## Environment variables" section').toBeGreaterThanOrEqual(0)
  const rest = readme.slice(start + 1)
  const section = rest.slice(0, rest.search(/^## /m))
  const names: string[] = []
  for (const row of section.matchAll(/^\| ([^|]+) \|/gm)) {
    for (const name of row[1]!.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)`/g)) names.push(name[1]!)
  }
  return names
}

/** The env fallbacks of every CLI flag. */
function flagEnvNames(): string[] {
  return [SERVE_FLAGS, CHECK_FLAGS, RELAY_FLAGS].flatMap((table) =>
    Object.values(table).flatMap((flag) => [...flag.env]),
  )
}

describe('the environment table', () => {
  it('the scanner finds every way a variable is read, and nothing in comments', () => {
    const code = [
      '// process.env.IN_A_COMMENT',
      '/** `SYNTH_IN_DOCS` */',
      'const a = process.env.READ_DIRECTLY',
      "const b = env['READ_BY_INDEX']",
      'const c = ctx.env.READ_THROUGH_OPTIONS',
      "const d = num(env, 'PORT')",
      "const NAMES = ['TASKAPP_FROM_A_TABLE', 'dev_environment_api_key']",
      'const script = `const x = process.env.TASKAPP_IN_A_SCRIPT`',
      "const e = request.env.seed; throw new E('TASKAPP_ERR_NOT_A_VARIABLE')",
    ].join('\n')
    expect([...envNamesIn('snippet.ts', code)].sort()).toEqual([
      'PORT',
      'READ_BY_INDEX',
      'READ_DIRECTLY',
      'READ_THROUGH_OPTIONS',
      'TASKAPP_FROM_A_TABLE',
      'TASKAPP_IN_A_SCRIPT',
      'dev_environment_api_key',
    ])
  })

  it('lists every variable a package reads, and none that no package reads', async () => {
    const readers = envReaders(ROOT)
    const read = new Set([...readers.keys(), ...flagEnvNames()])
    // The scan is not vacuous: names read in each style are found.
    for (const known of [
      'ENVIRONMENT_API_KEY',
      'TASKAPP_RELAY_MAX_INFLIGHT',
      'PORT',
      'TASKAPP_SUPERVISOR_GRACE_MS',
    ]) {
      expect(read).toContain(known)
    }
    const listed = await readmeNames()
    const missing = [...read].filter((name) => !listed.includes(name))
    expect(missing, 'read in packages/*/src but missing from the README table').toEqual([])
    const stale = listed.filter((name) => !read.has(name))
    expect(stale, 'in the README table but read nowhere').toEqual([])
    expect(listed.length, 'each variable is listed once').toBe(new Set(listed).size)
  })
})

describe("the task app's key: one reading in every layer", () => {
  afterEach(() => {
    vi.unstubAllEnvs()
  })

  const variants: Array<[string, Record<string, string>, string]> = [
    ['ENVIRONMENT_API_KEY', { ENVIRONMENT_API_KEY: 'key-env-0123456789' }, 'key-env-0123456789'],
    ['DEV_ENVIRONMENT_API_KEY', { DEV_ENVIRONMENT_API_KEY: 'key-dev-0123456789' }, 'key-dev-0123456789'],
    ['dev_environment_api_key', { dev_environment_api_key: 'key-low-0123456789' }, 'key-low-0123456789'],
    [
      'all three (the first wins)',
      {
        ENVIRONMENT_API_KEY: 'key-env-0123456789',
        DEV_ENVIRONMENT_API_KEY: 'key-dev-0123456789',
        dev_environment_api_key: 'key-low-0123456789',
      },
      'key-env-0123456789',
    ],
  ]

  it.each(variants)('%s: the library, the CLI and the agent take the same key', (_name, env, key) => {
    for (const name of ['ENVIRONMENT_API_KEY', 'DEV_ENVIRONMENT_API_KEY', 'dev_environment_api_key']) {
      vi.stubEnv(name, env[name])
    }
    expect(environmentApiKey(env)).toBe(key)
    expect(localApiKeysFromEnv(env)).toEqual([key])
    const app = new InProcessTaskApp({ app: () => {}, tunnel: { mode: 'local' } })
    expect(app.apiKey).toBe(key)
    const serve = parseCommand(['serve', 'task-app.ts'], env)
    expect(serve).toMatchObject({ command: 'serve', apiKey: key, apiKeyFrom: 'env' })
    expect(parseCommand(['check', 'http://127.0.0.1:1'], env)).toMatchObject({
      command: 'check',
      apiKey: key,
    })
  })

  it('a key only in dev_environment_api_key: the agent injects what the task server accepts', async () => {
    const env = { dev_environment_api_key: 'key-low-0123456789' }
    vi.stubEnv('ENVIRONMENT_API_KEY', undefined)
    vi.stubEnv('DEV_ENVIRONMENT_API_KEY', undefined)
    vi.stubEnv('ENVIRONMENT_API_KEY_ALIASES', undefined)
    vi.stubEnv('dev_environment_api_key', env.dev_environment_api_key)
    const aliases = { ...env, ENVIRONMENT_API_KEY_ALIASES: 'alias-0123456789' }
    expect(environmentApiKeys(aliases)).toEqual(['key-low-0123456789', 'alias-0123456789'])
    // A task server reading the environment (no apiKeys in its config).
    const app = createTaskApp({
      appId: 'env',
      name: 'Env',
      description: 'reads its key from the environment',
      provideTasksetDescription: () => ({}),
      provideTaskInstances: () => [],
      rollout: (r) => ({ trace_correlation_id: r.trace_correlation_id, reward_info: { outcome_reward: 1 } }),
    })
    await using served = await listenLoopback(app)
    await using relay = await createRelayServer({ apiKeys: ['relay-key-0123456789'] })
    await using tunnel = await synthTunnel({
      backendUrl: relay.url,
      apiKey: 'relay-key-0123456789',
      env,
    }).open({
      localUrl: served.url,
      port: served.port,
      host: served.host,
    })
    // The caller sends no task-app key: the agent injects the environment's, which the server accepts.
    const res = await fetch(`${tunnel.url}/info`, { headers: tunnel.headers })
    expect(res.status).toBe(200)
    await app.lifecycle.close()
  })
})
