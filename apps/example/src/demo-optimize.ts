/**
 * The demo's second act (`pnpm demo`, steps 7-9): a prompt optimization of the example task app.
 * A local jobs backend (`createLocalBackend`) with the deterministic model signs container tokens;
 * `runInProcessJob` starts the task app again behind the same relay, trusting the backend's key,
 * and runs the GEPA job of `jobs/ticket-routing.gepa.toml` on it. Then the final table: baseline vs
 * optimized prompt on the validation seeds, and the best prompt.
 */
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import {
  createDeterministicModel,
  createLocalBackend,
  generateContainerKeyPair,
  redact,
  runInProcessJob,
  type InProcessJobUpdate,
  type JobProgress,
  type RelayServer,
  type TunnelSpec,
} from '@taskapp/sdk'
import { buildConfig } from './task-app'

/** The job config of the example (GEPA over ticket routing). */
export const JOB_CONFIG = fileURLToPath(new URL('../jobs/ticket-routing.gepa.toml', import.meta.url))

/** What the optimization act needs from the demo. */
export interface OptimizeActOptions {
  /** The relay of the first act (undefined with `--tunnel local`). */
  readonly relay: RelayServer | undefined
  readonly port: number
  /** An OpenAI-compatible endpoint to use instead of the deterministic model. */
  readonly inferenceUrl: string | undefined
  readonly model: string | undefined
  readonly out: (line?: string) => void
}

/** What the act found. */
export interface OptimizeActResult {
  readonly status: string
  readonly baseline: number | undefined
  readonly best: number | undefined
}

function score(value: number | undefined): string {
  return value === undefined ? '–' : value.toFixed(3)
}

/** `gen 2/6 · rollouts 346/1200 · best 0.340 (baseline 0.260) · 2.1 s` */
function progressLine(p: JobProgress): string {
  return (
    `gen ${p.generation ?? 0}/${p.generations ?? '?'} · rollouts ${p.rolloutsUsed ?? 0}/${p.rolloutBudget ?? '?'} · ` +
    `best ${score(p.bestScore)} (baseline ${score(p.baselineScore)}) · ${(p.elapsedMs / 1000).toFixed(1)} s`
  )
}

function reporter(out: OptimizeActOptions['out']): (u: InProcessJobUpdate) => void {
  return (u) => {
    if (u.phase === 'task-app-started') out(`   task app    ${u.taskAppUrl} (${u.tunnelMode} tunnel)`)
    if (u.phase === 'submitted') {
      if (u.pageUrl !== undefined) out(`   watch       ${u.pageUrl} (live page, from this machine)`)
      out(`   job         ${u.jobId} submitted; progress:`)
    }
    if (u.phase === 'event' && /\.generation\.completed$/.test(u.event?.type ?? '')) {
      out(`   ${progressLine(u.progress)}`)
    }
  }
}

/** Steps 7-9. Resolves once the job ended and everything it started is stopped. */
export async function optimizeAct(options: OptimizeActOptions): Promise<OptimizeActResult> {
  const { out, relay } = options
  const apiKey = `sk_demo_${randomBytes(16).toString('hex')}`
  await using model = options.inferenceUrl === undefined ? await createDeterministicModel() : undefined
  await using backend = await createLocalBackend({
    upstream: {
      baseUrl: options.inferenceUrl ?? model?.url ?? '',
      ...(options.model !== undefined && { model: options.model }),
      ...(process.env.TASKAPP_UPSTREAM_API_KEY && { apiKey: process.env.TASKAPP_UPSTREAM_API_KEY }),
    },
    apiKeys: [apiKey],
    signingKey: generateContainerKeyPair().privateKey,
  })
  out(
    `7. backend     local jobs backend at ${backend.url}; model ${model ? 'deterministic (built in)' : options.inferenceUrl}`,
  )
  out(`   tokens      signs container tokens; the task app trusts ${redact(backend.trustedKey ?? '')}`)
  out('8. optimize    GEPA on jobs/ticket-routing.gepa.toml, the task app started again by runInProcessJob')
  const tunnel: TunnelSpec =
    relay === undefined
      ? { mode: 'local' }
      : { mode: 'synthtunnel', relayUrl: relay.url, relayApiKey: relay.apiKey }
  let last: JobProgress | undefined
  const report = reporter(out)
  const result = await runInProcessJob({
    configPath: JOB_CONFIG,
    backend: { url: backend.url, apiKey },
    taskApp: {
      configFactory: () => buildConfig(),
      port: options.port,
      tunnel,
      containerAuth: { trustedKeys: backend.trustedKey },
    },
    onStatus: (u) => {
      last = u.progress
      report(u)
    },
  })
  const r = result.result
  out(
    `9. result      job ${result.jobId} ${result.status} in ${((last?.elapsedMs ?? 0) / 1000).toFixed(1)} s ` +
      `(${last?.rolloutsUsed ?? '?'} rollouts of ${last?.rolloutBudget ?? '?'}); task app stopped`,
  )
  out()
  const gain =
    r?.bestScore !== undefined && r.baselineScore !== undefined ? r.bestScore - r.baselineScore : undefined
  out('   prompt      validation score (50 validation seeds)')
  out(`   baseline    ${score(r?.baselineScore)}`)
  out(
    `   optimized   ${score(r?.bestScore)}${gain === undefined ? '' : `  (${gain >= 0 ? '+' : ''}${gain.toFixed(3)})`}`,
  )
  out()
  out('   best prompt:')
  for (const line of (r?.bestPrompt ?? r?.error ?? '(none)').split('\n')) out(`     ${line}`)
  out()
  return { status: result.status, baseline: r?.baselineScore, best: r?.bestScore }
}
