/**
 * The cost of the watchdog design and of readiness detection, against the cloudflared test double.
 * Baselines are measured in the same run:
 *
 * - open → ready: `cloudflareQuickTunnel().open()` (watchdog process, free metrics port, `{}` config,
 *   log parsing) vs the floor any wrapper has: spawning the double directly and reading its stderr
 *   until the `Registered tunnel connection` line.
 * - close: `tunnel.close()` (SIGTERM through to the watchdog having exited) vs SIGTERM to a directly
 *   spawned double and waiting for its exit.
 * - memory (Linux): resident size of the watchdog vs an idle `node -e` process.
 *
 * Run: pnpm bench tunnel-cloudflare
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { cloudflareQuickTunnel } from '@taskapp/tunnel-cloudflare'

const DOUBLE = fileURLToPath(
  new URL('../packages/tunnel-cloudflare/src/fixtures/cloudflared-double.cjs', import.meta.url),
)
const RUNS = 12
const env = {
  ...process.env,
  CLOUDFLARED_DOUBLE_URL_DELAY_MS: '20',
  CLOUDFLARED_DOUBLE_REGISTER_DELAY_MS: '50',
  CLOUDFLARED_DOUBLE_SHUTDOWN_MS: '0',
}
const target = { localUrl: 'http://127.0.0.1:9', port: 9, host: '127.0.0.1' }

async function direct(): Promise<{ open: number; close: number }> {
  const t0 = performance.now()
  const child = spawn(
    DOUBLE,
    ['tunnel', '--no-autoupdate', '--url', target.localUrl, '--metrics', '127.0.0.1:0'],
    {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  const lines = createInterface({ input: child.stderr })
  await new Promise<void>((resolve) =>
    lines.on('line', (l) => {
      if (l.includes('Registered tunnel connection')) resolve()
    }),
  )
  const open = performance.now() - t0
  const t1 = performance.now()
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
  return { open, close: performance.now() - t1 }
}

async function wrapped(): Promise<{ open: number; close: number; watchdogKb: number }> {
  const t0 = performance.now()
  const tunnel = await cloudflareQuickTunnel({ cloudflaredPath: DOUBLE, env }).open(target)
  const open = performance.now() - t0
  const info = (await (await fetch(`${tunnel.metricsUrl}/taskapp-double/info`)).json()) as { ppid: number }
  const watchdogKb = await rssKb(info.ppid)
  const t1 = performance.now()
  await tunnel.close()
  return { open, close: performance.now() - t1, watchdogKb }
}

async function rssKb(pid: number): Promise<number> {
  if (process.platform !== 'linux') return Number.NaN
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN)
}

async function idleNodeKb(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'process.send("up"); setInterval(() => {}, 1e6)'], {
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
  })
  await once(child, 'message')
  const kb = await rssKb(child.pid!)
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
  return kb
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const base = { open: [] as number[], close: [] as number[] }
const ours = { open: [] as number[], close: [] as number[], kb: [] as number[] }
const idle: number[] = []
await direct() // warm-up
await wrapped()
for (let i = 0; i < RUNS; i++) {
  const d = await direct()
  base.open.push(d.open)
  base.close.push(d.close)
  const w = await wrapped()
  ours.open.push(w.open)
  ours.close.push(w.close)
  ours.kb.push(w.watchdogKb)
  if (i < 4) idle.push(await idleNodeKb())
}
const row = (name: string, b: number, o: number, unit = 'ms') =>
  console.log(
    `${name.padEnd(16)} baseline ${b.toFixed(1).padStart(7)} ${unit}   ours ${o.toFixed(1).padStart(7)} ${unit}   ratio ${(o / b).toFixed(2)}x`,
  )
console.log(`median of ${RUNS} runs (double registers 50 ms after a 20 ms URL delay)`)
row('open → ready', median(base.open), median(ours.open))
row('close → gone', median(base.close), median(ours.close))
row('watchdog RSS', median(idle) / 1024, median(ours.kb) / 1024, 'MB')
