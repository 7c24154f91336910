/**
 * A CommonJS project, as plain `npm init` makes it (no `"type": "module"`), with the packed
 * packages installed from their tarballs: a `.ts` task-app file that imports `@taskapp/sdk`,
 * uses top-level `await` and imports a sibling `.ts` file loads as an ES module, both through
 * the installed `taskapp serve` and through `InProcessTaskApp` required from a CommonJS script.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { npmInstall, packTarballs, sh, tempDir, userEnv } from './install-helpers'
import { expectAllGone, shellStatus, spawnProcess } from './test-helpers'

const TASK_APP = `import { defineTaskAppConfig } from '@taskapp/sdk'
import { answers } from './answers.js'

// Top-level await: an error in a file compiled to CommonJS.
const splits: string[] = await Promise.resolve(['train'])

export default defineTaskAppConfig({
  appId: 'commonjs-project',
  name: 'CommonJS project',
  description: 'a .ts task app in a package without "type": "module"',
  provideTasksetDescription: () => ({ splits }),
  provideTaskInstances: (seeds) => seeds.map(() => ({ task: { id: 'cjs', name: 'CJS' } })),
  rollout: (request) => ({
    trace_correlation_id: request.trace_correlation_id,
    reward_info: { outcome_reward: answers[request.env.seed ?? 0] === 'yes' ? 1 : 0 },
  }),
})
`

const ANSWERS = `export const answers: readonly string[] = ['yes', 'no']\n`

// A CommonJS script: require() of the ESM-only sdk (Node >= 20.19), then the task-app file.
const MAIN = `const { InProcessTaskApp } = require('@taskapp/sdk')
async function main() {
  const app = await InProcessTaskApp.start({
    taskAppPath: 'task-app.ts', port: 0, tunnel: { mode: 'local' }, apiKey: 'cjs-key', handleSignals: false,
  })
  try {
    const res = await fetch(app.url + '/', { headers: { 'X-API-Key': 'cjs-key' } })
    console.log(JSON.stringify({ status: res.status, body: await res.json() }))
  } finally {
    await app.stop()
  }
}
main().catch((err) => { console.error(err); process.exitCode = 1 })
`

let project: ReturnType<typeof tempDir>
let packs: ReturnType<typeof tempDir>

beforeAll(async () => {
  packs = tempDir('packs')
  project = tempDir('commonjs')
  const tarballs = await packTarballs(packs.dir)
  await sh('npm', ['init', '-y'], project.dir)
  await npmInstall(project.dir, [...tarballs.values()])
  writeFileSync(join(project.dir, 'task-app.ts'), TASK_APP)
  writeFileSync(join(project.dir, 'answers.ts'), ANSWERS)
  writeFileSync(join(project.dir, 'main.js'), MAIN)
}, 300_000)

afterAll(() => {
  project?.remove()
  packs?.remove()
})

describe('a CommonJS project (npm init) with the packed packages installed', () => {
  it('is CommonJS: npm init wrote no "type": "module"', () => {
    const pkg = JSON.parse(readFileSync(join(project.dir, 'package.json'), 'utf8')) as { type?: string }
    expect(pkg.type ?? 'commonjs').toBe('commonjs')
  })

  it('taskapp serve task-app.ts: the file loads as ESM and answers through the printed URL; Ctrl+C stops', async () => {
    await using cli = spawnProcess(
      join(project.dir, 'node_modules/.bin/taskapp'),
      ['serve', 'task-app.ts', '--port', '0', '--json'],
      { cwd: project.dir, env: userEnv() },
    )
    const printed = (await cli.waitForJson(
      (l) => typeof l.url === 'string',
      'the serve JSON line',
      60_000,
    )) as {
      url: string
      port: number
      headers: Record<string, string>
    }
    const headers = { ...printed.headers, 'content-type': 'application/json' }
    expect((await fetch(`${printed.url}/health`, { headers })).status).toBe(200)
    const rollout = await fetch(`${printed.url}/rollout`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ trace_correlation_id: 'cjs-1', env: { seed: 0 }, policy: { config: {} } }),
    })
    expect(rollout.status).toBe(200)
    expect(await rollout.json()).toMatchObject({ reward_info: { outcome_reward: 1 } })
    cli.child.kill('SIGINT')
    expect(shellStatus(await cli.exited)).toBe(130)
    expect(cli.stderr()).not.toMatch(/Illegal constructor|Top-level await/)
    await expectAllGone(cli, printed.port)
  }, 120_000)

  it('InProcessTaskApp required from a CommonJS script loads the .ts file too', async () => {
    const { stdout } = await sh('node', ['main.js'], project.dir, 60_000)
    expect(JSON.parse(stdout)).toEqual({ status: 200, body: { status: 'ok', service: 'commonjs-project' } })
  }, 90_000)
})
