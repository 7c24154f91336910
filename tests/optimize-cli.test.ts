/**
 * End to end, real processes: `taskapp optimize` (the CLI run from source) against a local jobs
 * backend with the deterministic model in this process, the example task app and its job TOML;
 * and `taskapp dev-backend` as a process answering a job create. Real sockets on 127.0.0.1, real
 * signals.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createDeterministicModel,
  createLocalBackend,
  generateContainerKeyPair,
  parseTrustedContainerKeys,
  type LocalBackend,
} from '@taskapp/sdk'
import { afterAll, describe, expect, it, onTestFinished } from 'vitest'
import { REPO_ROOT, expectAllGone, groupMembers, portIsFree, shellStatus, spawnTs } from './test-helpers'

const CLI = join(REPO_ROOT, 'packages/sdk/src/cli/cli.ts')
const APP = 'apps/example/src/task-app.ts'
const TOML = 'apps/example/jobs/ticket-routing.gepa.toml'
const KEY = 'sk-optimize-e2e-0123456789'
/** A quick search (a few seconds). */
const SMALL = [
  '-o',
  'prompt_learning.gepa.rollout.budget=200',
  '-o',
  'prompt_learning.gepa.population.num_generations=2',
]
/** A search far longer than any test waits for. */
const ENDLESS = [
  '-o',
  'prompt_learning.gepa.rollout.budget=100000',
  '-o',
  'prompt_learning.gepa.population.num_generations=1000',
]

/** The child's environment: nothing of the developer's Synth/taskapp variables, only what a test gives. */
function childEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const name of Object.keys(process.env)) {
    if (/^(?:SYNTH_|TASKAPP_|ENVIRONMENT_API_KEY$)/.test(name)) env[name] = undefined
  }
  return { ...env, ...vars }
}

/** The local backend signing container tokens, with the deterministic model; closed after the test. */
async function signingBackend(): Promise<{ backend: LocalBackend; trusted: string }> {
  const model = await createDeterministicModel()
  onTestFinished(() => model.close())
  const pair = generateContainerKeyPair({ kid: 'e2e' })
  const backend = await createLocalBackend({
    upstream: { baseUrl: model.url },
    apiKeys: [KEY],
    signingKey: pair.privateKeySeed,
    signingKeyId: 'e2e',
  })
  onTestFinished(() => backend.close())
  return { backend, trusted: pair.trusted }
}

function optimize(backend: LocalBackend, trusted: string, extra: string[]) {
  return spawnTs(
    CLI,
    [
      'optimize',
      TOML,
      '--app',
      APP,
      '--backend',
      backend.url,
      '--container-keys',
      trusted,
      '--port',
      '0',
      ...extra,
    ],
    { env: childEnv({ SYNTH_API_KEY: KEY }) },
  )
}

async function jobStatus(backend: LocalBackend, jobId: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${backend.url}/api/v1/offline/jobs/${jobId}`, {
    headers: { authorization: `Bearer ${KEY}` },
  })
  return (await res.json()) as Record<string, unknown>
}

/** The baseline and optimized scores of the final table. */
function tableScores(stdout: string): { baseline: number; optimized: number } {
  const baseline = /^ {2}baseline +(\d\.\d{3})$/m.exec(stdout)?.[1]
  const optimized = /^ {2}optimized +(\d\.\d{3}) +\(\+(\d\.\d{3})\)$/m.exec(stdout)?.[1]
  if (baseline === undefined || optimized === undefined) throw new Error(`no score table in:\n${stdout}`)
  return { baseline: Number(baseline), optimized: Number(optimized) }
}

describe('taskapp optimize', { timeout: 90_000 }, () => {
  it('runs the job to success: progress on stderr, the table on stdout, exit 0, nothing left', async () => {
    const { backend, trusted } = await signingBackend()
    await using cli = optimize(backend, trusted, SMALL)
    const exit = await cli.exited
    expect(exit, `stderr:\n${cli.stderr()}`).toEqual({ code: 0, signal: null })
    const out = cli.stdout()
    expect(out).toMatch(
      /^job pl_[0-9a-f]+ succeeded in [\d.]+ s: \d+ rollouts of 200, \d generations?, \d+ candidates?$/m,
    )
    const { baseline, optimized } = tableScores(out)
    expect(optimized).toBeGreaterThan(baseline)
    expect(out).toMatch(/^best prompt:\n {2}You route customer-support tickets/m)
    expect(out).toMatch(/^ {2}If the input mentions "\w+", answer "\w+"\.$/m)
    expect(cli.stderr()).toMatch(/^✓ task app running at http:\/\/127\.0\.0\.1:\d+ \(local tunnel\)$/m)
    expect(cli.stderr()).toMatch(/^✓ job pl_[0-9a-f]+ submitted$/m)
    const page = /^ {2}watch it live: (http:\/\/127\.0\.0\.1:\d+\/jobs\/pl_[0-9a-f]+)$/m.exec(
      cli.stderr(),
    )?.[1]
    expect(page).toMatch(new RegExp(`^${backend.url}/jobs/`))
    const html = await fetch(page!) // the page answers from loopback without the backend's key
    expect(html.status).toBe(200)
    expect(await html.text()).toContain('class="status status-succeeded"')
    expect(cli.stderr()).toMatch(
      /^ {2}gen \d\/2 · rollouts \d+\/200 · best \d\.\d{3} \(baseline \d\.\d{3}\) · [\d.]+ s$/m,
    )
    expect(cli.stderr()).not.toContain(KEY)
    expect(groupMembers(cli.pid)).toEqual([])
  })

  it('--json: one JSON event per line, ending with the result', async () => {
    const { backend, trusted } = await signingBackend()
    await using cli = optimize(backend, trusted, [...SMALL, '--json'])
    expect((await cli.exited).code).toBe(0)
    const lines = cli.stdout().trim().split('\n')
    const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    expect(events.map((e) => e.event).filter((e, i, all) => e !== all[i - 1])).toEqual([
      'task_app_started',
      'submitted',
      'job_event',
      'result',
    ])
    expect(events[0]).toMatchObject({
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      tunnel: 'local',
    })
    const jobEvents = events.filter((e) => e.event === 'job_event')
    expect(jobEvents[0]).toMatchObject({ type: 'learning.policy.gepa.job.started', seq: 1 })
    expect(jobEvents.at(-1)).toMatchObject({ type: 'learning.policy.gepa.job.completed', generations: 2 })
    const result = events.at(-1)!
    expect(result).toMatchObject({
      event: 'result',
      status: 'succeeded',
      rolloutBudget: 200,
      backendUrl: backend.url,
      pageUrl: `${backend.url}/jobs/${result.jobId as string}`,
    })
    expect(result.bestScore as number).toBeGreaterThan(result.baselineScore as number)
    expect((await jobStatus(backend, result.jobId as string)).status).toBe('succeeded')
    expect(cli.stderr()).toBe('')
  })

  it("a job that fails exits 1 with the backend's reason", async () => {
    const { backend, trusted } = await signingBackend()
    await using cli = optimize(backend, trusted, ['-o', 'prompt_learning.gepa.rollout.budget=5'])
    expect((await cli.exited).code).toBe(1)
    expect(cli.stderr()).toMatch(/^taskapp optimize: job pl_[0-9a-f]+ failed: .*rollout\.budget \(5\)/m)
    expect(cli.stdout()).toBe('')
    expect(groupMembers(cli.pid)).toEqual([])
  })

  it('Ctrl+C cancels the job on the backend, stops the task app, exits 130', async () => {
    const { backend, trusted } = await signingBackend()
    await using cli = optimize(backend, trusted, [...ENDLESS, '--json'])
    const started = await cli.waitForJson((e) => e.event === 'task_app_started', 'task_app_started', 45_000)
    const submitted = await cli.waitForJson((e) => e.event === 'submitted', 'submitted', 30_000)
    await cli.waitForJson((e) => e.type === 'learning.policy.gepa.baseline', 'the baseline', 30_000)
    const jobId = submitted.jobId as string
    expect((await jobStatus(backend, jobId)).status).toBe('running')
    cli.child.kill('SIGINT')
    expect(shellStatus(await cli.exited)).toBe(130)
    expect(await jobStatus(backend, jobId)).toMatchObject({ status: 'cancelled' })
    const events = cli.jsonLines()
    expect(events.map((e) => e.event)).toContain('cancelling')
    expect(events.at(-1)).toMatchObject({ event: 'error', code: 'TASKAPP_ERR_INTERRUPTED', exitCode: 130 })
    await expectAllGone(cli, Number(new URL(started.url as string).port))
  })

  describe('bad input exits 2 in the words of the command line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'taskapp-optimize-'))
    const noAlgorithm = join(dir, 'no-algorithm.toml')
    writeFileSync(noAlgorithm, '[prompt_learning]\ncontainer_url = "http://127.0.0.1:1"\n')
    afterAll(() => rmSync(dir, { recursive: true, force: true }))

    it.each([
      [
        [noAlgorithm, '--app', APP],
        { SYNTH_API_KEY: KEY },
        ['<config.toml>', 'prompt_learning.algorithm is required'],
      ],
      [[join(dir, 'missing.toml'), '--app', APP], { SYNTH_API_KEY: KEY }, ['<config.toml>: cannot read']],
      [
        [TOML, '--app', APP],
        {},
        ['no Synth API key: set SYNTH_API_KEY or give --backend-api-key-file <path>'],
      ],
      [
        [TOML, '--app', APP, '-o', 'prompt_learning.container_api_key=k'],
        { SYNTH_API_KEY: KEY },
        ['--override prompt_learning.container_api_key'],
      ],
      [[TOML], { SYNTH_API_KEY: KEY }, ['--app <file> is required']],
    ])('%j', async (args, vars, words) => {
      await using cli = spawnTs(
        CLI,
        ['optimize', ...args, '--backend', 'http://127.0.0.1:9', '--port', '0'],
        {
          env: childEnv(vars),
        },
      )
      expect((await cli.exited).code).toBe(2)
      for (const w of words) expect(cli.stderr()).toContain(w)
      expect(cli.stderr()).toContain('Run `taskapp optimize --help` for usage.')
      expect(cli.stdout()).toBe('')
    })
  })
})

describe('taskapp dev-backend', { timeout: 60_000 }, () => {
  it('starts, prints its URL and the key to trust, answers a create, stops on Ctrl+C', async () => {
    await using cli = spawnTs(
      CLI,
      ['dev-backend', '--deterministic-model', '--generate-signing-key', '--port', '0', '--json'],
      { env: childEnv({ SYNTH_API_KEY: KEY }) },
    )
    const report = await cli.waitForJson((line) => typeof line.url === 'string', 'the report', 45_000)
    expect(report).toMatchObject({
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      model: { kind: 'deterministic', url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/v1$/) },
      apiKeySource: 'env',
      signingKey: 'generated',
    })
    expect(report).not.toHaveProperty('apiKey') // a key it was given is never echoed
    expect(report.jobsUrl).toBe(`${report.url as string}/jobs`)
    expect((await fetch(report.jobsUrl as string)).status).toBe(200) // the job pages, no key from loopback
    const [trusted] = parseTrustedContainerKeys(report.trustedKey as string)
    expect(trusted?.kid).toBe('dev')
    const url = report.url as string
    const body = {
      kind: 'gepa_offline',
      config: {
        prompt_learning: {
          algorithm: 'gepa',
          container_url: 'http://127.0.0.1:9',
          initial_prompt: { messages: [{ role: 'system', pattern: 'Route the ticket.' }] },
          gepa: { evaluation: { seeds: [0, 1, 2], validation_seeds: [3, 4] } },
        },
      },
      auto_start: false,
    }
    const refused = await fetch(`${url}/api/v1/offline/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    expect(refused.status).toBe(401)
    const created = await fetch(`${url}/api/v1/offline/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify(body),
    })
    expect(created.status).toBe(200)
    expect(await created.json()).toMatchObject({ job_id: expect.stringMatching(/^pl_/), status: 'pending' })
    expect(cli.stderr()).not.toContain(KEY)
    cli.child.kill('SIGINT')
    expect(shellStatus(await cli.exited)).toBe(130)
    await expectAllGone(cli, Number(new URL(url).port))
    expect(await portIsFree(Number(new URL((report.model as { url: string }).url).port))).toBe(true)
  })

  it('without keys it generates one and prints it once; without a model it exits 2', async () => {
    await using cli = spawnTs(CLI, ['dev-backend', '--deterministic-model', '--port', '0'], {
      env: childEnv({}),
    })
    const [, key] = await cli.waitForLine(/^ {2}api key: +(sk_dev_\S+) /, 45_000)
    expect(cli.stdout()).toMatch(/^ {2}tokens: +none \(no signing key\)/m)
    expect(cli.stdout()).toMatch(
      /^ {2}jobs: +http:\/\/127\.0\.0\.1:\d+\/jobs {2}\(live job pages, from this machine\)$/m,
    )
    expect(cli.stdout().split(key!).length - 1).toBe(1)
    cli.child.kill('SIGTERM')
    expect(shellStatus(await cli.exited)).toBe(143)
    await using bad = spawnTs(CLI, ['dev-backend', '--port', '0'], { env: childEnv({}) })
    expect((await bad.exited).code).toBe(2)
    expect(bad.stderr()).toContain('give a model: --deterministic-model')
  })
})
