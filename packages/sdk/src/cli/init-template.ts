/**
 * The starter project `taskapp init` writes: file names and contents. Kept as strings so the
 * CLI needs no template directory at run time; `tests/init.test.ts` installs the packed packages
 * into a generated project and runs its typecheck, its tests and `npm start`.
 */

/** What the starter's package.json pins. */
export interface StarterVersions {
  /** The `@taskapp/sdk` version the project depends on (a caret range of it). */
  readonly sdk: string
  /** The tsx version the project's test script runs with (a caret range of it). */
  readonly tsx: string
}

/** Dev dependencies for the typecheck; the sdk's own types are checked with these. */
const TYPESCRIPT = '^5.9.3'
const TYPES_NODE = '^20.19.43'

/** A valid npm package name made from a directory name (`My App` → `my-app`). */
export function packageNameOf(dir: string): string {
  const name = dir
    .toLowerCase()
    .replace(/[^a-z0-9._~-]+/g, '-')
    .replace(/^[._-]+|[-]+$/g, '')
    .slice(0, 214)
  return name === '' ? 'task-app' : name
}

function packageJson(name: string, versions: StarterVersions): string {
  const pkg = {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    engines: { node: '>=20.19' },
    scripts: {
      start: 'taskapp serve task-app.ts',
      test: 'node --import tsx --test task-app.test.ts',
      typecheck: 'tsc',
    },
    dependencies: { '@taskapp/sdk': `^${versions.sdk}` },
    devDependencies: { '@types/node': TYPES_NODE, tsx: `^${versions.tsx}`, typescript: TYPESCRIPT },
  }
  return `${JSON.stringify(pkg, null, 2)}\n`
}

const TSCONFIG = `{
  "compilerOptions": {
    "target": "ES2022",
    "lib": ["ES2023", "ESNext.Disposable"],
    "module": "NodeNext",
    "moduleResolution": "NodeNext",
    "types": ["node"],
    "strict": true,
    "noUncheckedIndexedAccess": true,
    "verbatimModuleSyntax": true,
    "skipLibCheck": true,
    "noEmit": true
  },
  "include": ["*.ts"]
}
`

const TASK_APP = `/**
 * A task app: the service a prompt optimizer or evaluator calls for health, task info and
 * rollouts. \`npm start\` serves this file (\`taskapp serve task-app.ts\`) and prints its URL.
 *
 * The task: name the capital of a country. A seed picks one of five instances; a rollout answers
 * it with the policy and scores the answer (reward 1 when right, else 0).
 */
import { defineTaskAppConfig } from '@taskapp/sdk'

/** One task instance: a question and the answer that earns the reward. */
export interface Instance {
  readonly question: string
  readonly answer: string
}

export const INSTANCES: readonly Instance[] = [
  { question: 'What is the capital of France?', answer: 'Paris' },
  { question: 'What is the capital of Japan?', answer: 'Tokyo' },
  { question: 'What is the capital of Kenya?', answer: 'Nairobi' },
  { question: 'What is the capital of Canada?', answer: 'Ottawa' },
  { question: 'What is the capital of Australia?', answer: 'Canberra' },
]

/** The instance a seed selects: seed mod 5, so any integer is a valid seed. */
export function instanceFor(seed: number): Instance {
  const n = INSTANCES.length
  return INSTANCES[((seed % n) + n) % n] as Instance
}

/**
 * The policy under test. This stand-in names the largest city it knows, so it is wrong twice and
 * an optimizer has room to do better. A real task app calls a model here: the caller's
 * \`request.policy.config\` carries its \`inference_url\` and \`model\`; pass \`signal\` to the call
 * so a cancelled rollout stops it.
 */
export async function answer(question: string, signal: AbortSignal): Promise<string> {
  signal.throwIfAborted()
  const largestCity: Record<string, string> = {
    France: 'Paris',
    Japan: 'Tokyo',
    Kenya: 'Nairobi',
    Canada: 'Toronto',
    Australia: 'Sydney',
  }
  const country = /capital of (\\w+)/.exec(question)?.[1] ?? ''
  return largestCity[country] ?? 'I do not know'
}

/** The reward: 1 when the answer is the expected city (case and spaces aside), else 0. */
export function score(predicted: string, expected: string): number {
  return predicted.trim().toLowerCase() === expected.toLowerCase() ? 1 : 0
}

export default defineTaskAppConfig({
  appId: 'capitals',
  name: 'Capitals',
  description: 'Name the capital of a country.',
  provideTasksetDescription: () => ({ splits: ['train'], size: INSTANCES.length }),
  provideTaskInstances: (seeds) =>
    seeds.map((seed) => ({
      task: { id: 'capitals', name: 'Capitals' },
      dataset: { id: 'capitals', split: 'train' },
      task_metadata: { seed, question: instanceFor(seed).question },
    })),
  rollout: async (request, ctx) => {
    const instance = instanceFor(request.env.seed ?? 0)
    const predicted = await answer(instance.question, ctx.signal)
    return {
      trace_correlation_id: request.trace_correlation_id,
      reward_info: {
        outcome_reward: score(predicted, instance.answer),
        details: { question: instance.question, expected: instance.answer, predicted },
      },
    }
  },
})
`

const TASK_APP_TEST = `// Run with \`npm test\` (node:test, TypeScript through tsx).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InProcessTaskApp } from '@taskapp/sdk'
import config, { INSTANCES, instanceFor, score } from './task-app.js'

test('the reward is 1 for the expected answer only', () => {
  assert.equal(score(' paris ', 'Paris'), 1)
  assert.equal(score('Lyon', 'Paris'), 0)
})

test('every seed selects an instance, negative ones too', () => {
  assert.equal(instanceFor(0), INSTANCES[0])
  assert.equal(instanceFor(7), INSTANCES[2])
  assert.equal(instanceFor(-1), INSTANCES[4])
})

test('over HTTP: /health answers and a rollout is scored', async () => {
  // A local server on a free port, no tunnel; stopped when the block ends.
  await using app = await InProcessTaskApp.start({
    config,
    port: 0,
    tunnel: { mode: 'local' },
    apiKey: 'test-key',
    handleSignals: false,
  })
  const headers = { 'X-API-Key': 'test-key', 'content-type': 'application/json' }
  assert.equal((await fetch(\`\${app.url}/health\`, { headers })).status, 200)
  const res = await fetch(\`\${app.url}/rollout\`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ trace_correlation_id: 't1', env: { seed: 0 }, policy: { config: {} } }),
  })
  assert.equal(res.status, 200)
  const body = (await res.json()) as { reward_info: { outcome_reward: number } }
  assert.equal(body.reward_info.outcome_reward, 1) // seed 0: France, Paris
})
`

function readme(name: string): string {
  return `# ${name}

A task app made with \`taskapp init\`: the small HTTP service a prompt optimizer or evaluator
calls for health, task info and rollouts. \`task-app.ts\` holds the task (five questions), the
policy (a stand-in for your model call) and the reward.

## Commands

\`\`\`bash
npm install          # once
npm start            # serve task-app.ts: prints the URL and the headers a caller sends; Ctrl+C stops
npm test             # the reward, and one rollout over HTTP (node:test)
npm run typecheck    # tsc, strict
\`\`\`

\`npm start\` runs \`taskapp serve task-app.ts\` on 127.0.0.1:8114 (or the next free port) with
no tunnel. Flags go after \`--\`:

\`\`\`bash
npm start -- --tunnel quick                          # a public Cloudflare quick tunnel
npm start -- --tunnel synthtunnel                    # Synth's relay (SYNTH_API_KEY in the environment)
npm start -- --api-key-file ./app-key --port 9000    # your own key, from a file
\`\`\`

Call it with the printed URL and headers, e.g. with the header line in a file (a key on the
command line shows in \`ps\`):

\`\`\`bash
curl -s "$URL/health" -H @./key-header
curl -s "$URL/rollout" -H @./key-header -H 'content-type: application/json' \\
  -d '{"trace_correlation_id":"t1","env":{"seed":3},"policy":{"config":{}}}'
\`\`\`

## Setup

An ES module project (\`"type": "module"\`), Node >= 20.19, TypeScript run by tsx with no build
step; \`tsconfig.json\` is \`nodenext\` and strict, so relative imports name the \`.js\` file
(\`./task-app.js\` for \`task-app.ts\`). \`taskapp --help\` lists every command and flag.
`
}

/**
 * The files of the starter project, in the order they are written.
 *
 * @example
 * ```ts
 * starterFiles('my-app', { sdk: '0.1.0', tsx: '4.23.15' }).map(([path]) => path)
 * // ['package.json', 'tsconfig.json', 'task-app.ts', 'task-app.test.ts', 'README.md', '.gitignore']
 * ```
 */
export function starterFiles(name: string, versions: StarterVersions): [path: string, content: string][] {
  return [
    ['package.json', packageJson(name, versions)],
    ['tsconfig.json', TSCONFIG],
    ['task-app.ts', TASK_APP],
    ['task-app.test.ts', TASK_APP_TEST],
    ['README.md', readme(name)],
    ['.gitignore', 'node_modules/\n'],
  ]
}
