/**
 * The child processes of `pnpm bench relay-abuse`: the relay, the victim (its local server and its
 * agent, in one process as `@taskapp/in-process` runs them) and the attacker. Packages run from
 * their built `dist/`.
 */
import { createServer } from 'node:http'
import type * as AgentModule from '@taskapp/tunnel-synth'
import type * as RelayModule from '@taskapp/tunnel-synth/relay'
import { builtEntry } from './built-package'
import { serveRole } from './ipc'
import { ATTACKS } from './relay-abuse-attacks'
import type { Attack, AttackName } from './relay-abuse-attacks'

/** Warnings and errors on stderr, prefixed with the role, so a failed run explains itself. */
function stderrLogger(role: string) {
  const line = (level: string) => (obj: object, msg?: string) =>
    console.error(`[${role}] ${level} ${msg ?? ''} ${JSON.stringify(obj)}`)
  return {
    debug() {},
    info() {},
    isLevelEnabled: (level: string) => level === 'warn' || level === 'error',
    warn: line('warn'),
    error: line('error'),
  }
}

const MiB = 2 ** 20

/** The relay with its default limits; reports its stats, and per phase their peaks and deltas. */
function relayRole(): void {
  let relay: RelayModule.RelayServer | undefined
  let timer: NodeJS.Timeout | undefined
  let peak = { inflight: 0, memory: 0 }
  let rejectedBefore: RelayModule.RelayRejections | undefined
  const sample = () => {
    const s = relay!.stats()
    peak = { inflight: Math.max(peak.inflight, s.inflight), memory: Math.max(peak.memory, s.memoryInUse) }
  }
  serveRole({
    async init(args) {
      const { createRelayServer } = (await import(
        builtEntry('tunnel-synth', 'relay.js').href
      )) as typeof RelayModule
      relay = await createRelayServer({
        apiKeys: args.apiKeys as string[],
        logger: stderrLogger('relay'),
      })
      return { url: relay.url }
    },
    stats: () => relay!.stats(),
    'phase-begin': () => {
      peak = { inflight: 0, memory: 0 }
      rejectedBefore = relay!.stats().rejected
      timer = setInterval(sample, 100)
      return {}
    },
    'phase-end': () => {
      clearInterval(timer)
      sample()
      const now = relay!.stats().rejected
      const rejected = Object.fromEntries(
        Object.entries(now).map(([k, v]) => [k, v - rejectedBefore![k as keyof typeof now]]),
      )
      return { peakInflight: peak.inflight, peakMemoryMiB: peak.memory / MiB, rejected }
    },
  })
}

/** The victim: a small JSON echo server and a real agent tunneling to it with the victim's key. */
function victimRole(): void {
  serveRole({
    async init(args) {
      const server = createServer((req, res) => {
        const chunks: Buffer[] = []
        req.on('data', (c: Buffer) => chunks.push(c))
        req.on('end', () => {
          const body = Buffer.concat(chunks)
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
          res.end(body)
        })
      })
      server.keepAliveTimeout = 30_000
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const port = (server.address() as { port: number }).port
      const { synthTunnel } = (await import(builtEntry('tunnel-synth').href)) as typeof AgentModule
      const tunnel = await synthTunnel({
        backendUrl: args.relayUrl as string,
        apiKey: args.apiKey as string,
        env: {},
        logger: stderrLogger('victim'),
      }).open({ localUrl: `http://127.0.0.1:${port}`, host: '127.0.0.1', port })
      return { url: tunnel.url, headers: tunnel.headers }
    },
  })
}

/** The attacker: runs one attack at a time with its own key (see relay-abuse-attacks.ts). */
function attackerRole(): void {
  let ctx = { relayUrl: '', apiKey: '', seconds: 0 }
  let attack: Attack | undefined
  serveRole({
    init(args) {
      ctx = { relayUrl: args.relayUrl as string, apiKey: args.apiKey as string, seconds: 0 }
      return {}
    },
    async start(args) {
      ctx.seconds = args.seconds as number
      attack = await ATTACKS[args.name as AttackName](ctx, args.size as number)
      await attack.established
      return {}
    },
    async stop() {
      const tally = await attack!.stop()
      attack = undefined
      return tally
    },
  })
}

/** Run `role` in this (child) process. */
export function serveAbuseRole(role: string): void {
  const roles: Record<string, () => void> = {
    relay: relayRole,
    victim: victimRole,
    attacker: attackerRole,
  }
  const run = roles[role]
  if (!run) throw new Error(`relay-abuse: unknown role ${role}`)
  run()
}
