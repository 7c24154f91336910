/**
 * `taskapp init` end to end, as a new user meets it: the built CLI writes a starter project into
 * an empty directory, the packed packages are installed there from their tarballs (`--no-save`,
 * so the project's package.json stays as written), and the project's own scripts run: `npm test`,
 * `npm run typecheck`, and `npm start`, called through the URL it prints and stopped with Ctrl+C.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { npmInstall, packTarballs, sh, tempDir, userEnv } from './install-helpers'
import { REPO_ROOT, expectAllGone, spawnProcess } from './test-helpers'

const CLI = join(REPO_ROOT, 'packages/sdk/bin/taskapp.js')

let parent: ReturnType<typeof tempDir>
let packs: ReturnType<typeof tempDir>
let project: string
let initOutput: string
let writtenPackageJson: string
let written: string[]

beforeAll(async () => {
  packs = tempDir('packs')
  parent = tempDir('init')
  project = join(parent.dir, 'my-task-app')
  const tarballs = await packTarballs(packs.dir)
  initOutput = (await sh(process.execPath, [CLI, 'init', 'my-task-app'], parent.dir)).stdout
  written = readdirSync(project).sort()
  writtenPackageJson = readFileSync(join(project, 'package.json'), 'utf8')
  await npmInstall(project, [...tarballs.values()], ['--no-save'])
}, 300_000)

afterAll(() => {
  parent?.remove()
  packs?.remove()
})

describe('taskapp init, then the project it writes', () => {
  it('wrote the starter and printed the next steps', () => {
    expect(written).toEqual([
      '.gitignore',
      'README.md',
      'package.json',
      'task-app.test.ts',
      'task-app.ts',
      'tsconfig.json',
    ])
    expect(initOutput).toContain('cd ./my-task-app\n  npm install\n  npm start')
    // The install left package.json as written: `@taskapp/sdk` at ^ the CLI's version.
    expect(readFileSync(join(project, 'package.json'), 'utf8')).toBe(writtenPackageJson)
  })

  it('npm test passes: node:test runs the reward checks and one rollout over HTTP', async () => {
    const { stdout } = await sh('npm', ['test'], project, 120_000)
    expect(stdout).toMatch(/^# pass 3$/m)
    expect(stdout).toMatch(/^# fail 0$/m)
  }, 120_000)

  it('npm run typecheck passes (strict, nodenext) against the installed types', async () => {
    await sh('npm', ['run', 'typecheck'], project, 120_000)
  }, 120_000)

  it('npm start serves task-app.ts: /health and a scored rollout through the printed URL; Ctrl+C stops it all', async () => {
    await using start = spawnProcess('npm', ['start', '--', '--port', '0', '--json'], {
      cwd: project,
      env: userEnv(),
    })
    const printed = (await start.waitForJson(
      (line) => typeof line.url === 'string',
      'the serve JSON line',
      60_000,
    )) as { url: string; port: number; headers: Record<string, string> }
    const headers = { ...printed.headers, 'content-type': 'application/json' }
    expect((await fetch(`${printed.url}/health`, { headers })).status).toBe(200)
    const rollout = await fetch(`${printed.url}/rollout`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ trace_correlation_id: 'init-1', env: { seed: 3 }, policy: { config: {} } }),
    })
    expect(rollout.status).toBe(200)
    // Seed 3 is Canada: the stand-in policy says Toronto, so the reward is 0.
    expect(await rollout.json()).toMatchObject({
      reward_info: { outcome_reward: 0, details: { expected: 'Ottawa', predicted: 'Toronto' } },
    })
    // Ctrl+C in a terminal signals the whole foreground group: npm and the taskapp it runs.
    process.kill(-start.pid, 'SIGINT')
    await start.exited
    await expectAllGone(start, printed.port)
  }, 120_000)
})
