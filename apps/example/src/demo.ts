/**
 * The taskapp demo (`pnpm demo`). First act: start the example task app in this process with
 * `InProcessTaskApp`, behind a relay tunnel to a relay this script starts on 127.0.0.1, then play
 * the optimizer through the public URL: health, task info, 50 concurrent rollouts, a results
 * table. Second act (`demo-optimize.ts`): a real prompt optimization of the same task app on a
 * local jobs backend with the deterministic model, run by `runInProcessJob` through the same
 * relay with container tokens, and the final table (baseline vs optimized prompt). Then stop
 * everything and exit 0. No account, no internet.
 *
 * Flags: --tunnel synthtunnel|local (default synthtunnel), --rollouts N (50), --split
 * train|validation|test (test), --port N (8114, next free one if busy), --inference-url URL and
 * --model NAME (use an OpenAI-compatible endpoint instead of the keyword baseline and of the
 * deterministic model), --skip-optimize (the first act only).
 */
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { InProcessTaskApp, createRelayServer, redact, type RelayServer } from '@taskapp/sdk'
import { optimizeAct } from './demo-optimize'
import { formatResultsTable, runRollouts, summarize } from './optimizer'
import { buildConfig } from './task-app'

const USAGE = `Usage: pnpm demo [-- options]

  --tunnel <mode>         synthtunnel (a relay started here on 127.0.0.1) | local  [synthtunnel]
  --rollouts <n>          concurrent rollouts to run  [50]
  --split <name>          train | validation | test  [test]
  --port <n>              task app port; the next free one if busy  [8114]
  --inference-url <url>   OpenAI-compatible base URL: use the chat policy instead of the baseline
  --model <name>          model for --inference-url  [gpt-4o-mini]
  --skip-optimize         skip the second act (the prompt optimization)
  -h, --help              this help
`

interface DemoOptions {
  tunnel: 'synthtunnel' | 'local'
  rollouts: number
  split: 'train' | 'validation' | 'test'
  port: number
  inferenceUrl: string | undefined
  model: string | undefined
  skipOptimize: boolean
}

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n\n${USAGE}`)
  process.exit(2)
}

function parseOptions(argv: string[]): DemoOptions {
  let parsed
  try {
    parsed = parseArgs({
      args: argv.filter((a) => a !== '--'),
      options: {
        tunnel: { type: 'string' },
        rollouts: { type: 'string' },
        split: { type: 'string' },
        port: { type: 'string' },
        'inference-url': { type: 'string' },
        model: { type: 'string' },
        'skip-optimize': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    })
  } catch (err) {
    fail((err as Error).message)
  }
  const v = parsed.values
  if (v.help === true) {
    process.stdout.write(USAGE)
    process.exit(0)
  }
  const tunnel = v.tunnel ?? 'synthtunnel'
  if (tunnel !== 'synthtunnel' && tunnel !== 'local')
    fail(`--tunnel must be synthtunnel or local, got "${tunnel}".`)
  const rollouts = Number(v.rollouts ?? '50')
  if (!Number.isInteger(rollouts) || rollouts < 1 || rollouts > 10_000) {
    fail(`--rollouts must be an integer in [1, 10000], got "${v.rollouts}".`)
  }
  const split = v.split ?? 'test'
  if (split !== 'train' && split !== 'validation' && split !== 'test') {
    fail(`--split must be train, validation or test, got "${split}".`)
  }
  const port = Number(v.port ?? '8114')
  if (!Number.isInteger(port) || (port !== 0 && (port < 1024 || port > 65_535))) {
    fail(`--port must be 0 or an integer in [1024, 65535], got "${v.port}".`)
  }
  return {
    tunnel,
    rollouts,
    split,
    port,
    inferenceUrl: v['inference-url'],
    model: v.model,
    skipOptimize: v['skip-optimize'] === true,
  }
}

const out = (line = ''): void => {
  process.stdout.write(`${line}\n`)
}

function ms(since: number): string {
  return `${(performance.now() - since).toFixed(1)} ms`
}

async function getJson(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(15_000) })
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // keep the text
  }
  return { status: res.status, body }
}

/** Starts the relay for `--tunnel synthtunnel` (step 1); none for `--tunnel local`. */
async function startRelay(options: DemoOptions): Promise<RelayServer | undefined> {
  if (options.tunnel !== 'synthtunnel') {
    out('1. relay       none (--tunnel local)')
    return undefined
  }
  const t = performance.now()
  const relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
  out(`1. relay       started at ${relay.url} (${ms(t)})`)
  return relay
}

/** Steps 3 and 4: `GET /health` and `GET /task_info` through the public URL; throws unless both answer 200. */
async function checkHealthAndInfo(url: string, headers: Record<string, string>): Promise<void> {
  const health = await getJson(`${url}/health`, headers)
  out(`3. health      GET /health → ${health.status} ${JSON.stringify(health.body)}`)
  if (health.status !== 200) throw new Error(`/health answered ${health.status} through the public URL`)
  const info = await getJson(`${url}/task_info`, headers)
  const taskset = (
    info.body as { taskset?: { name?: string; labels?: string[]; sizes?: Record<string, number> } }
  ).taskset
  out(
    `4. task info   GET /task_info → ${info.status}: ${taskset?.name ?? '?'}; labels ${taskset?.labels?.join(', ') ?? '?'}; ` +
      `sizes ${JSON.stringify(taskset?.sizes ?? {})}`,
  )
  if (info.status !== 200) throw new Error(`/task_info answered ${info.status} through the public URL`)
}

/** The rollout policy: the keyword baseline, or the chat policy with `--inference-url`. */
function demoPolicy(options: DemoOptions): { policy_name: string; config: Record<string, unknown> } {
  return options.inferenceUrl === undefined
    ? { policy_name: 'baseline', config: {} }
    : {
        policy_name: 'chat',
        config: { inference_url: options.inferenceUrl, ...(options.model && { model: options.model }) },
      }
}

/** Step 5: runs the rollouts through `url`, prints the results table; resolves to the failure count. */
async function runAndReport(
  url: string,
  headers: Record<string, string>,
  options: DemoOptions,
): Promise<number> {
  const policy = demoPolicy(options)
  out(
    `5. rollouts    ${options.rollouts} concurrent POST /rollout on the ${options.split} split, policy ${policy.policy_name}`,
  )
  const t2 = performance.now()
  const seeds = Array.from({ length: options.rollouts }, (_, i) => i)
  const results = await runRollouts({ url, headers, seeds, split: options.split, policy })
  const wall = performance.now() - t2
  out()
  out(formatResultsTable(results))
  const summary = summarize(results)
  out(
    `all ${summary.rollouts} rollouts in ${wall.toFixed(0)} ms wall time (${((summary.rollouts / wall) * 1000).toFixed(0)} rollouts/s)`,
  )
  for (const r of results.filter((x) => x.error !== undefined).slice(0, 5))
    out(`   seed ${r.seed} failed: ${r.error}`)
  out()
  return summary.failed
}

/** The first act (steps 2-6): the task app behind the tunnel, played through its public URL. Resolves to the failed rollouts. */
async function rolloutAct(options: DemoOptions, relay: RelayServer | undefined): Promise<number> {
  const taskAppKey = `demo_${randomBytes(16).toString('hex')}`
  const t = performance.now()
  await using app = await InProcessTaskApp.start({
    configFactory: () => buildConfig(),
    port: options.port,
    apiKey: taskAppKey,
    tunnel:
      relay !== undefined
        ? { mode: 'synthtunnel', relayUrl: relay.url, relayApiKey: relay.apiKey }
        : { mode: options.tunnel },
  })
  out(`2. task app    ${app.localUrl} is healthy, tunnel ${app.tunnelMode} open (${ms(t)})`)
  out(`   public URL  ${app.url}`)
  for (const [name, value] of Object.entries(app.headers)) out(`   header      ${name}: ${redact(value)}`)

  // Everything below goes through the public URL with app.headers alone, as a remote optimizer
  // would call it (through the relay the agent adds the task app key; locally X-API-Key is listed).
  const headers: Record<string, string> = { ...app.headers }
  await checkHealthAndInfo(app.url, headers)
  const failed = await runAndReport(app.url, headers, options)
  const t3 = performance.now()
  await app.stop()
  out(`6. stopped     task app and tunnel closed (${ms(t3)})`)
  return failed
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2))
  const started = performance.now()
  out(
    'taskapp demo: the example task app (support ticket routing) in this process, played by a fake optimizer, then optimized for real',
  )
  out()

  const relay = await startRelay(options)
  let ok: boolean
  try {
    const failed = await rolloutAct(options, relay)
    ok = failed === 0
    if (!options.skipOptimize) {
      const act = await optimizeAct({
        relay,
        port: options.port,
        inferenceUrl: options.inferenceUrl,
        model: options.model,
        out,
      })
      ok = ok && act.status === 'succeeded'
    }
  } finally {
    if (relay !== undefined) {
      await relay.close()
      out(`${options.skipOptimize ? 7 : 10}. stopped    relay closed`)
    }
  }
  out(`demo finished in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return ok ? 0 : 1
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    const e = err as { code?: string; message?: string; cause?: { message?: string } }
    process.stderr.write(
      `demo failed${e.code ? ` [${e.code}]` : ''}: ${e.message ?? String(err)}${e.cause?.message ? `\n  cause: ${e.cause.message}` : ''}\n`,
    )
    process.exitCode = 1
  },
)
