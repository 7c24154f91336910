/** `taskapp relay`: run a self-hosted SynthTunnel relay until SIGINT/SIGTERM. */
import { createFileLeaseStore, createRelayServer, relayOptionsFromEnv } from '@taskapp/tunnel-synth/relay'
import type { RelayServer, RelayServerOptions } from '@taskapp/tunnel-synth/relay'
import type { CliEnv, RelayCommand } from './args'
import { createCliLogger, redactSecret, type CliIo } from './output'
import { formatRendered, renderError } from './render-error'
import type { ServeProcess } from './serve'
import { EXIT_ON_SIGNAL, watchStopSignals } from './stop-signals'

/** Where the status page and the metrics are, and what opens them (never the key itself). */
function adminLines(relay: RelayServer, keyed: boolean): string[] {
  const status = !keyed
    ? 'off (set an admin key: --admin-key-file <path> or TASKAPP_RELAY_ADMIN_KEY_FILE)'
    : relay.adminUrl !== undefined
      ? `${relay.adminUrl}/admin  (sign in with the admin key)`
      : `in a browser on the admin port only (add --admin-port); scripts: ${relay.url}/admin/status.json with Authorization: Bearer <admin key>`
  const lines = [`  status:  ${status}`]
  if (relay.adminUrl !== undefined) lines.push(`  metrics: ${relay.adminUrl}/metrics  (also /livez, /readyz)`)
  else if (keyed) lines.push(`  metrics: ${relay.url}/metrics  (Authorization: Bearer <admin key>)`)
  return lines
}

/** Where the relay keeps leases, for the start banner. */
function leasesLine(cmd: RelayCommand): string {
  if (cmd.redisUrl !== undefined)
    return `in Redis (${cmd.redisUrl.replace(/\/\/[^/@]*@/, '//***@')}), shared by the cluster`
  return cmd.leaseFile === undefined ? 'in memory (lost on restart; --lease-file keeps them)' : cmd.leaseFile
}

/**
 * Runs `taskapp relay`: starts the relay, prints its URL (and a generated API key when none was
 * given), then waits for SIGINT/SIGTERM and closes it. Resolves to the exit status.
 *
 * @example
 * ```ts
 * process.exitCode = await runRelay(cmd, { stdout: process.stdout, stderr: process.stderr }, process)
 * ```
 */
export async function runRelay(
  cmd: RelayCommand,
  io: CliIo,
  proc: ServeProcess,
  env: CliEnv = {},
): Promise<number> {
  const logger = createCliLogger(cmd.logLevel, io)
  const signals = watchStopSignals(proc)
  try {
    let relay: RelayServer
    let keyed = false
    try {
      const options: RelayServerOptions = {
        // limits (TASKAPP_RELAY_MAX_INFLIGHT, ...) from the environment; the flags win
        ...relayOptionsFromEnv(env),
        port: cmd.port,
        host: cmd.host,
        logger,
        ...(cmd.apiKeys.length > 0 && { apiKeys: cmd.apiKeys }),
        ...(cmd.publicUrl !== undefined && { publicBaseUrl: cmd.publicUrl }),
        ...(cmd.leaseFile !== undefined && { leaseStore: createFileLeaseStore(cmd.leaseFile) }),
        ...(cmd.redisUrl !== undefined && {
          cluster: {
            redis: cmd.redisUrl,
            secret: cmd.clusterSecret ?? '',
            ...(cmd.advertiseUrl !== undefined && { advertiseUrl: cmd.advertiseUrl }),
            ...(cmd.nodeId !== undefined && { nodeId: cmd.nodeId }),
          },
        }),
        ...(cmd.adminKey !== undefined && { adminKey: cmd.adminKey }),
        ...(cmd.adminPort !== undefined && { adminPort: cmd.adminPort, adminHost: cmd.adminHost }),
      }
      keyed = options.adminKey !== undefined || (options.adminKeys?.length ?? 0) > 0
      relay = await createRelayServer(options)
    } catch (err) {
      const r = renderError(err, { command: 'relay' })
      io.stderr.write(`taskapp relay: could not start: ${formatRendered(r)}\n`)
      return 1
    }
    try {
      const lines = [
        `taskapp relay: listening`,
        `  url:     ${relay.url}`,
        `  public:  ${relay.publicBaseUrl}`,
        `  health:  ${relay.url}/health`,
        `  leases:  ${leasesLine(cmd)}`,
      ]
      if (relay.cluster) lines.push(`  cluster: node ${relay.cluster.nodeId}, presence and leases in Redis`)
      lines.push(...adminLines(relay, keyed))
      if (cmd.apiKeys.length === 0) {
        lines.push(
          `  api key: ${relay.apiKey}  (generated for this run; choose one with --api-key-file <path> or TASKAPP_RELAY_API_KEYS)`,
        )
      } else {
        lines.push(`  api keys: ${cmd.apiKeys.map(redactSecret).join(', ')}`)
      }
      lines.push(
        `Task apps connect with: taskapp serve <file> --relay-url ${relay.url} --relay-api-key-file <path> (or TASKAPP_RELAY_API_KEY)`,
      )
      lines.push('Press Ctrl+C to stop.')
      io.stdout.write(`${lines.join('\n')}\n`)
      await signals.stopRequested
      io.stderr.write(`taskapp relay: ${signals.received() ?? 'signal'}, closing\n`)
    } finally {
      await relay.close()
    }
    const received = signals.received()
    return received === undefined ? 0 : EXIT_ON_SIGNAL[received]
  } finally {
    signals.dispose()
  }
}
