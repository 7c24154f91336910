import { fileURLToPath } from 'node:url'
import { createTaskApp } from '@taskapp/task-server'
import { createRelayServer } from '@taskapp/tunnel-synth/relay'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import pkg from '../../package.json' with { type: 'json' }
import { listenLoopback } from '@taskapp/test-utils'
import { FakeProcess, captureIo } from '../test-helpers'
import { buildConfig } from '../fixtures/echo-app'
import { runCheckProbe } from './check'
import { parseCommand, type ServeCommand } from './args'
import { runCli } from './main'
import { runServe } from './serve'
import { createCliLogger, Progress, redactSecret } from './output'

const ECHO_APP = fileURLToPath(new URL('../fixtures/echo-app.ts', import.meta.url))

async function cli(argv: string[], env: Record<string, string> = {}) {
  const io = captureIo()
  const status = await runCli(argv, io, env, new FakeProcess())
  return { status, out: io.out(), err: io.err() }
}

describe('runCli: help, version, usage errors', () => {
  it('--help and help <cmd> print usage on stdout, exit 0', async () => {
    const main = await cli(['--help'])
    expect(main).toMatchObject({ status: 0, err: '' })
    expect(main.out).toMatch(/taskapp serve <file>/)
    expect((await cli(['help', 'check'])).out).toMatch(/^Usage: taskapp check <url>/)
  })

  it('--version prints the package version', async () => {
    expect(await cli(['--version'])).toEqual({ status: 0, out: `${pkg.version}\n`, err: '' })
  })

  it('bad flags exit 2 with the message on stderr and nothing on stdout', async () => {
    const r = await cli(['serve', 'a.ts', '--port', 'x'])
    expect(r.status).toBe(2)
    expect(r.out).toBe('')
    expect(r.err).toMatch(/^taskapp serve: --port must be/)
  })

  it('relay refuses a non-loopback host without --allow-non-loopback (exit 2, nothing bound)', async () => {
    const r = await cli(['relay', '--host', '0.0.0.0', '--port', '0'])
    expect(r.status).toBe(2)
    expect(r.err).toContain('add --allow-non-loopback')
  })
})

describe('taskapp check against a real task app on 127.0.0.1:0', () => {
  it('healthy + info → exit 0; the report carries /info', async () => {
    const app = createTaskApp({ ...buildConfig(), apiKeys: ['check-key'] })
    await using served = await listenLoopback(app)
    await app.lifecycle.ready()
    const ok = await cli(['check', served.url, '--api-key', 'check-key'])
    expect(ok.status).toBe(0)
    // a key given as a flag: one warning line on the CLI's stderr, without the key
    expect(ok.err).toBe(
      'taskapp check: warning: --api-key puts a secret in the process list (ps, /proc/<pid>/cmdline) ' +
        'for every local user to read; use --api-key-file <path> or ENVIRONMENT_API_KEY instead.\n',
    )
    expect(ok.out).toMatch(/✓ healthy/)
    expect(ok.out).toContain('task:    Echo (echo)')
    const json = await cli(['check', served.url, '--json'], { ENVIRONMENT_API_KEY: 'check-key' })
    expect(json.err).toBe('')
    const report = JSON.parse(json.out) as {
      healthy: boolean
      infoStatus: number
      info: { service: { task: { id: string } } }
    }
    expect(report).toMatchObject({ healthy: true, infoStatus: 200 })
    expect(report.info.service.task.id).toBe('echo')
    await app.lifecycle.close()
  })

  it('no key sent → exit 1 and says no key was sent (not "refused"); headers from -H are sent', async () => {
    const seen: (string | undefined)[] = []
    await using served = await listenLoopback((req, res) => {
      seen.push(req.headers['x-synthtunnel-worker-token'] as string | undefined)
      res.statusCode = 400
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ detail: { error: { code: 'unauthorised', message: 'no' } } }))
    })
    const r = await cli(['check', served.url, '-H', 'X-SynthTunnel-Worker-Token: wt_x'])
    expect(r.status).toBe(1)
    expect(r.out).toMatch(/✗ unhealthy .*no API key sent, and the task app requires one \(HTTP 400\)/)
    expect(seen).toEqual(['wt_x'])
  })

  it('--wait keeps probing until the app turns healthy', async () => {
    let calls = 0
    await using served = await listenLoopback((_req, res) => {
      calls += 1
      res.setHeader('content-type', 'application/json')
      res.statusCode = calls < 3 ? 503 : 200
      res.end(JSON.stringify(calls < 3 ? { healthy: false } : { healthy: true }))
    })
    const report = await runCheckProbe({
      command: 'check',
      url: served.url,
      headers: {},
      timeoutMs: 10_000,
      wait: true,
      json: true,
    })
    expect(report.healthy).toBe(true)
    expect(calls).toBeGreaterThanOrEqual(3)
  })
})

describe('taskapp serve in-process (fake process for signals)', () => {
  it('starts the file, prints URL and headers, stops on SIGINT with status 130', async () => {
    await using relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
    const io = captureIo()
    const proc = new FakeProcess()
    const done = runCli(
      [
        'serve',
        ECHO_APP,
        '--port',
        '0',
        '--relay-url',
        relay.url,
        '--relay-api-key',
        relay.apiKey,
        '--api-key',
        'serve-key-123456',
      ],
      io,
      {},
      proc,
    )
    await expect.poll(() => io.out(), { timeout: 20_000, interval: 10 }).toContain('Press Ctrl+C')
    const url = /url: +(\S+)/.exec(io.out())?.[1] ?? ''
    const token = /X-SynthTunnel-Worker-Token: (\S+)/.exec(io.out())?.[1] ?? ''
    expect(url.startsWith(`${relay.url}/s/rt_`)).toBe(true)
    // The relay agent adds the task app key: the worker token is the only header to send.
    expect(io.out()).not.toContain('X-API-Key')
    expect(io.out()).not.toContain('serve-key-123456')
    const res = await fetch(`${url}/task_info?seed=4`, { headers: { 'X-SynthTunnel-Worker-Token': token } })
    expect(res.status).toBe(200)
    expect(proc.listenerCount('SIGINT')).toBe(1)
    proc.emit('SIGINT')
    // A second signal while stopping exits at once, through the injected process (never the real one).
    proc.emit('SIGINT')
    expect(proc.exits).toEqual([130])
    expect(io.err()).toContain('SIGINT again, exiting without waiting')
    expect(await done).toBe(130)
    expect(io.err()).toMatch(/✓ stopping \(SIGINT\)/)
    expect(proc.listenerCount('SIGINT')).toBe(0)
    await expect.poll(() => relay.stats().agents, { timeout: 20_000, interval: 10 }).toBe(0)
  })

  it('a start failure exits 1 with one line saying why and the code, and removes its signal listeners', async () => {
    const io = captureIo()
    const proc = new FakeProcess()
    const status = await runCli(['serve', '/nonexistent/app.ts', '--port', '0'], io, {}, proc)
    expect(status).toBe(1)
    expect(io.err()).toBe(
      '✗ starting /nonexistent/app.ts (local tunnel): the task app file /nonexistent/app.ts does not exist. ' +
        '[TASKAPP_ERR_TASK_APP_NOT_FOUND]\n',
    )
    expect(proc.listenerCount('SIGINT') + proc.listenerCount('SIGTERM')).toBe(0)
  })
})

describe('taskapp serve: what is bad usage and what is not', () => {
  it('a rule the flags could not check, broken only while starting, is a start failure (exit 1), not usage', async () => {
    // A hand-made command the parser would have refused: a relay URL and no key anywhere.
    vi.stubEnv('SYNTH_API_KEY', undefined)
    onTestFinished(() => {
      vi.unstubAllEnvs()
    })
    await using relay = await createRelayServer({ port: 0, host: '127.0.0.1' })
    const parsed = parseCommand(['serve', ECHO_APP, '--port', '0', '-t', 'local']) as ServeCommand
    const cmd: ServeCommand = { ...parsed, tunnel: { mode: 'synthtunnel', relayUrl: relay.url } }
    const io = captureIo()
    expect(await runServe(cmd, io, new FakeProcess())).toBe(1)
    const lines = io
      .err()
      .split('\n')
      .filter((l) => l !== '')
    expect(lines).toHaveLength(2)
    expect(lines[1]).toMatch(
      new RegExp(
        `^✗ starting .*echo-app\\.ts \\(synthtunnel tunnel\\): the relay at ${relay.url.replace(/\./g, '\\.')} needs its key: --relay-api-key-file <path> or TASKAPP_RELAY_API_KEY .*\\[TASKAPP_ERR_SYNTH_API_KEY_MISSING\\]$`,
      ),
    )
  })
})

describe('output helpers', () => {
  it('the logger filters by level and shortens secret-looking fields', () => {
    const io = captureIo()
    const logger = createCliLogger('info', io)
    logger.debug({ a: 1 }, 'hidden')
    logger.info({ apiKey: 'sk-live-abcdef123', nested: { workerToken: 'wt_0123456789' }, port: 1 }, 'shown')
    logger.child({ component: 'relay' }).warn({ authorization: 'Bearer abcdefghijk' }, 'warned')
    expect(io.err()).toBe(
      '[taskapp] INFO shown {"apiKey":"sk-l…","nested":{"workerToken":"wt_0…"},"port":1}\n' +
        '[taskapp] WARN warned {"component":"relay","authorization":"Bear…"}\n',
    )
    const silent = captureIo()
    createCliLogger('silent', silent).error({}, 'x')
    expect(silent.err()).toBe('')
    // isLevelEnabled lets the relay and agent skip building DEBUG records (children keep the level)
    expect(['debug', 'info', 'warn', 'error'].map((l) => logger.isLevelEnabled(l))).toEqual([
      false,
      true,
      true,
      true,
    ])
    expect(logger.child({}).isLevelEnabled('debug')).toBe(false)
    expect(createCliLogger('debug', io).isLevelEnabled('debug')).toBe(true)
    expect(createCliLogger('silent', io).isLevelEnabled('error')).toBe(false)
    expect(logger.isLevelEnabled('nonsense')).toBe(false)
  })

  it.each([
    [undefined, '<unset>'],
    ['', '<unset>'],
    ['short', '…'],
    ['sk-1234567890', 'sk-1…'],
  ])('redactSecret(%j) → %j', (secret, shown) => {
    expect(redactSecret(secret)).toBe(shown)
  })

  it('progress prints a start line and a done line with the duration (non-TTY)', () => {
    const io = captureIo()
    const progress = new Progress(io, true)
    progress.step('opening tunnel')
    progress.done('http://x')
    progress.step('second')
    progress.fail('boom')
    expect(io.err()).toMatch(
      /^… opening tunnel\n✓ opening tunnel: http:\/\/x \(\d+ ms\)\n… second\n✗ second: boom\n$/,
    )
    const off = captureIo()
    new Progress(off, false).step('x')
    expect(off.err()).toBe('')
  })

  it('a note is a line of its own (on a TTY the step line is redrawn under it); a failure shows even with progress off', () => {
    const io = captureIo()
    const progress = new Progress(io, true)
    progress.note('before any step')
    progress.step('starting')
    progress.note('port 1 is taken')
    progress.fail('boom')
    expect(io.err()).toBe('· before any step\n… starting\n· port 1 is taken\n✗ starting: boom\n')
    const tty = captureIo(true)
    const ticking = new Progress(tty, true)
    ticking.step('starting')
    ticking.note('port 1 is taken')
    ticking.done()
    const clear = '\r\x1b[2K' // back to the line start, erase it
    expect(tty.err().replace(/\(\d+ ms\)/, '(N ms)')).toBe(
      `… starting${clear}· port 1 is taken\n… starting${clear}✓ starting (N ms)\n`,
    )
    const off = captureIo()
    const quiet = new Progress(off, false)
    quiet.note('not shown')
    quiet.fail('not shown either')
    quiet.fail('shown', { always: true, label: 'starting x' })
    expect(off.err()).toBe('✗ starting x: shown\n')
  })
})
