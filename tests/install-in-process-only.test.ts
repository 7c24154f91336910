/**
 * `@taskapp/in-process` installed on its own, from the packed tarballs: tsx (and esbuild with
 * its install script) is an optional peer, so it is not installed; a `.js`/`.mjs` task-app file
 * runs without it, a `.ts` one fails with `TASKAPP_ERR_TSX_MISSING` naming `npm install tsx`,
 * and after that install the `.ts` file runs.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { namesInTree, npmInstall, packTarballs, sh, tempDir } from './install-helpers'

/** What in-process needs, without the sdk, the tunnels or tsx. */
const PACKAGES = [
  '@taskapp/core',
  '@taskapp/health-checker',
  '@taskapp/port-manager',
  '@taskapp/task-server',
  '@taskapp/in-process',
]

const CONFIG = `{
  appId: 'in-process-only',
  name: 'in-process only',
  description: 'loaded without the sdk',
  provideTasksetDescription: () => ({ splits: ['train'] }),
  provideTaskInstances: (seeds) => seeds.map(() => ({ task: { id: 'x', name: 'X' } })),
  rollout: (request) => ({ trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: 1 } }),
}`

// Starts the task-app file given as argv[2] and prints one JSON line: the answer of GET /, or the error.
const MAIN = `import { InProcessTaskApp } from '@taskapp/in-process'
try {
  const app = await InProcessTaskApp.start({
    taskAppPath: process.argv[2], port: 0, tunnel: { mode: 'local' }, apiKey: 'only-key', handleSignals: false,
  })
  try {
    const res = await fetch(app.url + '/', { headers: { 'X-API-Key': 'only-key' } })
    console.log(JSON.stringify({ status: res.status, body: await res.json() }))
  } finally {
    await app.stop()
  }
} catch (err) {
  console.log(JSON.stringify({ code: err.code, message: err.message }))
}
`

let project: ReturnType<typeof tempDir>
let packs: ReturnType<typeof tempDir>

async function start(file: string): Promise<Record<string, unknown>> {
  const { stdout } = await sh('node', ['main.mjs', file], project.dir, 60_000)
  return JSON.parse(stdout) as Record<string, unknown>
}

async function installedNames(): Promise<Set<string>> {
  const { stdout } = await sh('npm', ['ls', '--all', '--json'], project.dir)
  return namesInTree(JSON.parse(stdout))
}

beforeAll(async () => {
  packs = tempDir('packs')
  project = tempDir('in-process-only')
  const tarballs = await packTarballs(packs.dir, PACKAGES)
  await sh('npm', ['init', '-y'], project.dir)
  await npmInstall(project.dir, [...tarballs.values()])
  writeFileSync(join(project.dir, 'main.mjs'), MAIN)
  writeFileSync(join(project.dir, 'task-app.mjs'), `export default ${CONFIG}\n`)
  writeFileSync(
    join(project.dir, 'task-app.ts'),
    `import type { TaskAppConfig } from '@taskapp/in-process'\nconst config: TaskAppConfig = ${CONFIG}\nexport default config\n`,
  )
}, 300_000)

afterAll(() => {
  project?.remove()
  packs?.remove()
})

describe('@taskapp/in-process installed alone', () => {
  it('installs neither tsx nor esbuild (an optional peer)', async () => {
    const names = await installedNames()
    expect(names).toContain('@taskapp/in-process')
    expect(names).not.toContain('tsx')
    expect(names).not.toContain('esbuild')
  })

  it('serves a .mjs task-app file without tsx', async () => {
    expect(await start('task-app.mjs')).toEqual({
      status: 200,
      body: { status: 'ok', service: 'in-process-only' },
    })
  })

  it('a .ts file → TASKAPP_ERR_TSX_MISSING, saying to npm install tsx', async () => {
    const result = await start('task-app.ts')
    expect(result.code).toBe('TASKAPP_ERR_TSX_MISSING')
    expect(result.message).toMatch(
      /task-app\.ts needs the package tsx, which is not installed: add it \(npm install tsx\)/,
    )
  })

  it('after npm install tsx, the .ts file runs', async () => {
    await npmInstall(project.dir, ['tsx@4.23.15'])
    expect(await installedNames()).toContain('esbuild')
    expect(await start('task-app.ts')).toEqual({
      status: 200,
      body: { status: 'ok', service: 'in-process-only' },
    })
  }, 240_000)
})
