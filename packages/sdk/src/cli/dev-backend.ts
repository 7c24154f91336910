/**
 * `taskapp dev-backend`: the local jobs backend (`createLocalBackend`) with the deterministic model
 * or an upstream OpenAI-compatible endpoint, until SIGINT/SIGTERM. Prints its URL, the job API key
 * (when generated) and the public key task apps must trust (with a signing key).
 */
import { randomBytes } from 'node:crypto'
import {
  createDeterministicModel,
  createLocalBackend,
  type DeterministicModel,
  type LocalBackend,
} from '@taskapp/jobs/backend'
import { generateContainerKeyPair } from '@taskapp/task-server'
import type { DevBackendCommand } from './args'
import { usage } from './flag-table'
import { createCliLogger, redactSecret, type CliIo, type CliLogger } from './output'
import type { ServeProcess } from './serve'
import { EXIT_ON_SIGNAL, watchStopSignals } from './stop-signals'

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

/** What `taskapp dev-backend --json` prints once listening. */
export interface DevBackendReport {
  readonly url: string
  readonly model: {
    readonly kind: 'deterministic' | 'upstream'
    readonly url: string
    readonly name?: string
  }
  /** The generated job API key (printed once: nobody else has it); absent when keys were given. */
  readonly apiKey?: string
  /** Where the job API keys came from. */
  readonly apiKeySource: 'flag' | 'file' | 'env' | 'generated'
  /** `file`, `env`, `generated` or `none`: where the container-token signing key came from. */
  readonly signingKey: 'file' | 'env' | 'generated' | 'none'
  /** A `SYNTH_CONTAINER_TRUSTED_PUBKEYS` entry (`kid:base64`) for task apps; with a signing key. */
  readonly trustedKey?: string
  /** `<url>/jobs`: the live job pages, for a browser on this machine; on a loopback host only. */
  readonly jobsUrl?: string
}

/** The signing key to give the backend, and where it came from. */
function signingOf(cmd: DevBackendCommand): {
  key?: string
  kid?: string
  source: DevBackendReport['signingKey']
} {
  if (cmd.generateSigningKey) {
    const kid = cmd.signingKeyId ?? 'dev'
    return { key: generateContainerKeyPair({ kid }).privateKeySeed, kid, source: 'generated' }
  }
  if (cmd.signingKey === undefined) return { source: 'none' }
  return {
    key: cmd.signingKey,
    ...(cmd.signingKeyId !== undefined && { kid: cmd.signingKeyId }),
    source: cmd.signingKeyFrom ?? 'env',
  }
}

/** Starts the model (when deterministic) and the backend; closes the model if the backend fails. */
async function start(
  cmd: DevBackendCommand,
  logger: CliLogger,
  apiKeys: readonly string[],
): Promise<{
  backend: LocalBackend
  model?: DeterministicModel
  report: Omit<DevBackendReport, 'apiKey' | 'apiKeySource'>
}> {
  const model = cmd.deterministicModel ? await createDeterministicModel({ logger }) : undefined
  const signing = signingOf(cmd)
  // The parser guarantees one model: the deterministic one, or --upstream-url.
  const upstreamUrl: string = model?.url ?? cmd.upstreamUrl ?? ''
  try {
    const backend = await createLocalBackend({
      port: cmd.port,
      host: cmd.host,
      apiKeys,
      logger,
      upstream: {
        baseUrl: upstreamUrl,
        ...(cmd.upstreamApiKey !== undefined && { apiKey: cmd.upstreamApiKey }),
        ...(cmd.upstreamModel !== undefined && { model: cmd.upstreamModel }),
      },
      ...(signing.key !== undefined && { signingKey: signing.key }),
      ...(signing.kid !== undefined && { signingKeyId: signing.kid }),
    })
    const report = {
      url: backend.url,
      model: {
        kind: model === undefined ? ('upstream' as const) : ('deterministic' as const),
        url: upstreamUrl,
        ...(cmd.upstreamModel !== undefined && { name: cmd.upstreamModel }),
      },
      signingKey: signing.source,
      ...(backend.trustedKey !== undefined && { trustedKey: backend.trustedKey }),
      ...(LOOPBACK.has(cmd.host) && { jobsUrl: `${backend.url}/jobs` }),
    }
    return { backend, ...(model !== undefined && { model }), report }
  } catch (err) {
    await model?.close()
    throw err
  }
}

/** The human-readable printout. */
function printLines(cmd: DevBackendCommand, report: DevBackendReport): string[] {
  const model =
    report.model.kind === 'deterministic'
      ? `deterministic (built in) at ${report.model.url}`
      : `${report.model.url}${report.model.name ? ` (${report.model.name})` : ''}` +
        `${cmd.upstreamApiKeyFrom ? `, key from ${cmd.upstreamApiKeyFrom === 'env' ? 'TASKAPP_UPSTREAM_API_KEY' : cmd.upstreamApiKeyFrom === 'file' ? '--upstream-api-key-file' : '--upstream-api-key'}` : ', no key'}`
  const lines = ['taskapp dev-backend: listening', `  url:      ${report.url}`, `  model:    ${model}`]
  if (report.jobsUrl !== undefined)
    lines.push(`  jobs:     ${report.jobsUrl}  (live job pages, from this machine)`)
  if (report.apiKey !== undefined) {
    lines.push(
      `  api key:  ${report.apiKey}  (generated for this run; choose one with --api-key-file <path> or SYNTH_API_KEY)`,
    )
  } else {
    lines.push(`  api keys: ${cmd.apiKeys.map(redactSecret).join(', ')}`)
  }
  if (report.trustedKey !== undefined) {
    lines.push(
      `  trust:    ${report.trustedKey}  (task apps: --container-keys or SYNTH_CONTAINER_TRUSTED_PUBKEYS; signing key ${report.signingKey === 'generated' ? 'generated for this run' : `from ${report.signingKey === 'file' ? cmd.signingKeyFile : 'SYNTH_CONTAINER_AUTH_PRIVATE_KEY'}`})`,
      `Run a job: SYNTH_BACKEND_URL=${report.url} taskapp optimize <config.toml> --app <file> --container-keys ${report.trustedKey}`,
    )
  } else {
    lines.push(
      '  tokens:   none (no signing key): task apps must be reached through a relay, whose agent adds their key',
      `Run a job: SYNTH_BACKEND_URL=${report.url} taskapp optimize <config.toml> --app <file> --relay-url <relay>`,
    )
  }
  lines.push('Press Ctrl+C to stop.')
  return lines
}

/**
 * Runs `taskapp dev-backend`: starts the backend, prints where it is, waits for SIGINT/SIGTERM,
 * closes it (cancelling running jobs). Resolves to the exit status (1 when it could not start).
 *
 * @example
 * ```ts
 * process.exitCode = await runDevBackend(cmd, { stdout: process.stdout, stderr: process.stderr }, process)
 * ```
 */
export async function runDevBackend(cmd: DevBackendCommand, io: CliIo, proc: ServeProcess): Promise<number> {
  if (!cmd.allowNonLoopback && !LOOPBACK.has(cmd.host)) {
    throw usage(
      'dev-backend',
      `--host ${cmd.host} is not loopback; add --allow-non-loopback to expose the backend on it.`,
    )
  }
  const logger = createCliLogger(cmd.logLevel, io)
  const signals = watchStopSignals(proc)
  try {
    const generated = cmd.apiKeys.length === 0 ? `sk_dev_${randomBytes(18).toString('base64url')}` : undefined
    let started: Awaited<ReturnType<typeof start>>
    try {
      started = await start(cmd, logger, generated === undefined ? cmd.apiKeys : [generated])
    } catch (err) {
      const e = err as { code?: string; message?: string }
      io.stderr.write(
        `taskapp dev-backend: could not start${e.code ? ` [${e.code}]` : ''}: ${e.message ?? String(err)}\n`,
      )
      return 1
    }
    const report: DevBackendReport = {
      ...started.report,
      ...(generated !== undefined && { apiKey: generated }),
      apiKeySource: generated !== undefined ? 'generated' : (cmd.apiKeysFrom ?? 'flag'),
    }
    try {
      io.stdout.write(cmd.json ? `${JSON.stringify(report)}\n` : `${printLines(cmd, report).join('\n')}\n`)
      await signals.stopRequested
      io.stderr.write(
        `taskapp dev-backend: ${signals.received() ?? 'signal'}, closing (running jobs are cancelled)\n`,
      )
    } finally {
      await started.backend.close()
      await started.model?.close()
    }
    const received = signals.received()
    return received === undefined ? 0 : EXIT_ON_SIGNAL[received]
  } finally {
    signals.dispose()
  }
}
