/**
 * The processes of the tunnel-synth benchmark, forked by `bench/tunnel-synth.bench.ts` with a role
 * name (see `./ipc`): the two local servers, the forwarders of the baseline, the relay, the agent
 * of the socket path and the in-process host (a local server and its agent in one process). Every
 * role answers `reset` / `report` with its CPU time (and RSS peak when asked) since the last reset.
 * Packages run from their built `dist/`, as users run them.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type * as TaskServer from '@taskapp/task-server'
import type * as AgentModule from '@taskapp/tunnel-synth'
import type * as RelayModule from '@taskapp/tunnel-synth/relay'
import { builtEntry } from './built-package'
import { startForwarder } from './forwarder'
import { serveRole } from './ipc'

const MB = 1024 * 1024
const role = process.argv[2] ?? ''

/** Children report warnings and errors on stderr so a failed run explains itself. */
const benchLogger = {
  debug() {},
  info() {},
  isLevelEnabled: (level: string) => level === 'warn' || level === 'error',
  warn: (obj: object, msg?: string) => console.error(`[${role}] warn ${msg} ${JSON.stringify(obj)}`),
  error: (obj: object, msg?: string) => console.error(`[${role}] error ${msg} ${JSON.stringify(obj)}`),
}

/**
 * CPU time, and the RSS peak when asked (`reset` with `rss: true`, the 1 MB phase only): polling
 * RSS every 5 ms costs the children ~5 % CPU, which the req/s phase would count as per-request cost.
 */
function sampler() {
  let baseline = process.memoryUsage.rss()
  let peak = baseline
  let cpu = process.cpuUsage()
  let t: NodeJS.Timeout | undefined
  return {
    reset(rss: boolean) {
      clearInterval(t)
      t = undefined
      baseline = process.memoryUsage.rss()
      peak = baseline
      cpu = process.cpuUsage()
      if (!rss) return
      t = setInterval(() => {
        const now = process.memoryUsage.rss()
        if (now > peak) peak = now
      }, 5)
      t.unref()
    },
    report() {
      const c = process.cpuUsage(cpu)
      const now = process.memoryUsage.rss()
      if (now > peak) peak = now
      return { baseline, peak, cpuMs: (c.user + c.system) / 1000 }
    },
  }
}

/** A bare `node:http` echo: `/echo` streams the body back (1 MB case), anything else answers it as JSON. */
function echoServer(): Server {
  const server = createServer((req, res) => {
    if (req.url === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      req.pipe(res)
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
      res.end(body)
    })
  })
  return server
}

/** `createTaskApp` with a trivial rollout handler, behind `apiKey`. */
async function taskAppServer(apiKey: string): Promise<Server> {
  const { createTaskApp } = (await import(builtEntry('task-server').href)) as typeof TaskServer
  const app = createTaskApp({
    appId: 'bench',
    name: 'Bench',
    description: 'trivial rollout handler',
    apiKeys: [apiKey],
    provideTasksetDescription: () => ({}),
    provideTaskInstances: () => [],
    rollout: (request) => ({
      trace_correlation_id: request.trace_correlation_id,
      reward_info: { outcome_reward: 1 },
    }),
  })
  return createServer(app)
}

/** Starts the `kind` server on 127.0.0.1:0. */
async function localServer(kind: string, apiKey: string): Promise<{ server: Server; port: number }> {
  const server = kind === 'taskapp' ? await taskAppServer(apiKey) : echoServer()
  server.keepAliveTimeout = 30_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as { port: number }).port }
}

/** Opens a SynthTunnel to `port` (in memory when `inProcess` is given: the in-process path). */
async function openTunnel(
  relayUrl: string,
  relayKey: string,
  port: number,
  key: string,
  inProcess?: { server: Server; mode: 'request' | 'connection' },
) {
  const { synthTunnel } = (await import(builtEntry('tunnel-synth').href)) as typeof AgentModule
  const tunnel = await synthTunnel({
    backendUrl: relayUrl,
    apiKey: relayKey,
    env: {},
    localApiKeys: key ? [key] : [],
    maxInflight: 256,
    logger: benchLogger,
    ...(inProcess ? { inProcess: inProcess.mode } : {}),
  }).open({
    localUrl: `http://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    ...(inProcess ? { server: inProcess.server } : {}),
  })
  return { url: tunnel.url, headers: tunnel.headers, stats: () => tunnel.stats() }
}

type Args = Record<string, unknown>

/** Each role's `init`: starts what the role runs and answers what the parent needs to reach it. */
const inits: Record<string, (args: Args) => Promise<Args>> = {
  async server(args) {
    return { port: (await localServer(args.kind as string, args.apiKey as string)).port }
  },
  async forwarder(args) {
    const ports: number[] = []
    for (const target of args.targets as number[]) ports.push((await startForwarder(target)).port)
    return { ports }
  },
  async relay(args) {
    const { createRelayServer } = (await import(
      builtEntry('tunnel-synth', 'relay.js').href
    )) as typeof RelayModule
    const relay = await createRelayServer({
      apiKeys: [args.relayKey as string],
      maxInflight: 512,
      logger: benchLogger,
    })
    extra = () => ({ peakMemoryInUse: relay.stats().peakMemoryInUse, budget: 64 * MB })
    return { url: relay.url }
  },
  async agent(args) {
    const tunnels = []
    for (const t of args.targets as { port: number; apiKey: string }[])
      tunnels.push(await openTunnel(args.relayUrl as string, args.relayKey as string, t.port, t.apiKey))
    return { tunnels: tunnels.map(({ url, headers }) => ({ url, headers })) }
  },
  async inprocess(args) {
    const apiKey = args.apiKey as string
    const { server, port } = await localServer(args.kind as string, apiKey)
    const mode = args.mode as 'request' | 'connection'
    const t = await openTunnel(args.relayUrl as string, args.relayKey as string, port, apiKey, {
      server,
      mode,
    })
    extra = () => ({ inMemory: t.stats().inMemory })
    return { url: t.url, headers: t.headers }
  },
}

let extra: () => Args = () => ({})

if (role) {
  const rss = sampler()
  if (process.env.BENCH_DEBUG) console.error(`[${role}] pid ${process.pid}`)
  const init = inits[role]
  if (!init) throw new Error(`tunnel-roles: unknown role ${role}`)
  serveRole({
    init,
    reset: (args) => void rss.reset(args.rss === true),
    report: () => ({ ...rss.report(), ...extra() }),
  })
}
