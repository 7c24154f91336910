import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import type { TaskAppStats } from '@taskapp/in-process'
import { FakeProcess, captureIo } from '../test-helpers'
import { runCli } from './main'
import { createCliLogger } from './output'
import { formatStatus, StatusLine } from './status-line'

const ECHO_APP = fileURLToPath(new URL('../fixtures/echo-app.ts', import.meta.url))
const CLEAR = '\r\x1b[2K'

/** A writable that says it is a terminal and keeps what it got (as a terminal would show it, raw). */
function fakeTty(isTTY = true) {
  let text = ''
  return { write: (t: string) => (text += t), isTTY, text: () => text }
}

function counter(initial: Partial<TaskAppStats> = {}) {
  let stats: TaskAppStats = {
    rollouts: 0,
    completed: 0,
    failed: 0,
    cancelled: 0,
    meanReward: undefined,
    ...initial,
  }
  return { read: () => stats, set: (next: Partial<TaskAppStats>) => (stats = { ...stats, ...next }) }
}

/**
 * Fake interval timers for the rest of the test: "several refresh periods pass" becomes
 * `vi.advanceTimersByTime`, with no real waiting.
 */
function fakeRefreshTimers(): void {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
  onTestFinished(() => void vi.useRealTimers())
}

function started(out: ReturnType<typeof fakeTty>, read: () => TaskAppStats | undefined) {
  const status = new StatusLine(out, { enabled: true, refreshMs: 5 })
  onTestFinished(() => status.stop())
  status.start(read)
  return status
}

describe('formatStatus', () => {
  it('rollouts, failures and the mean reward with two decimals; cancellations only when any', () => {
    expect(formatStatus({ rollouts: 42, completed: 41, failed: 1, cancelled: 0, meanReward: 0.8123 })).toBe(
      'rollouts 42 · failures 1 · mean reward 0.81',
    )
    expect(formatStatus({ rollouts: 0, completed: 0, failed: 0, cancelled: 0, meanReward: undefined })).toBe(
      'rollouts 0 · failures 0 · mean reward –',
    )
    expect(formatStatus({ rollouts: 5, completed: 3, failed: 0, cancelled: 2, meanReward: 1 })).toBe(
      'rollouts 5 · failures 0 · mean reward 1.00 · cancelled 2',
    )
  })
})

describe('StatusLine on a TTY', () => {
  it('draws at start, redraws in place when the count changes, erases on stop', async () => {
    const out = fakeTty()
    const count = counter()
    const status = started(out, count.read)
    expect(out.text()).toBe(`${CLEAR}rollouts 0 · failures 0 · mean reward –`)
    count.set({ rollouts: 2, completed: 1, failed: 1, meanReward: 0.5 })
    await expect.poll(out.text).toContain(`${CLEAR}rollouts 2 · failures 1 · mean reward 0.50`)
    const drawn = out.text()
    await new Promise((resolve) => setImmediate(resolve))
    expect(out.text()).toBe(drawn) // unchanged count: nothing redrawn
    status.stop()
    expect(out.text()).toBe(`${drawn}${CLEAR}`)
    count.set({ rollouts: 3 })
    status.stop() // idempotent, and no timer left to draw again
    expect(out.text()).toBe(`${drawn}${CLEAR}`)
  })

  it('a log line written through it goes above the status line, which comes back below', () => {
    const out = fakeTty()
    const status = started(out, counter({ rollouts: 1, completed: 1, meanReward: 1 }).read)
    const logger = createCliLogger('info', { stdout: fakeTty(false), stderr: status.stream })
    logger.info({ port: 1 }, 'hello')
    expect(out.text()).toBe(
      `${CLEAR}rollouts 1 · failures 0 · mean reward 1.00` +
        `${CLEAR}[taskapp] INFO hello {"port":1}\n` +
        `${CLEAR}rollouts 1 · failures 0 · mean reward 1.00`,
    )
    expect(status.stream.isTTY).toBe(true) // progress keeps its TTY behaviour through it
  })

  it('does not draw over a line still being written (a progress step), until its newline', async () => {
    fakeRefreshTimers()
    const out = fakeTty()
    const count = counter()
    const status = started(out, count.read)
    status.stream.write('… stopping')
    count.set({ rollouts: 9 })
    vi.advanceTimersByTime(30) // six refresh periods pass
    expect(out.text()).toBe(`${CLEAR}rollouts 0 · failures 0 · mean reward –${CLEAR}… stopping`)
    status.stream.write(`${CLEAR}✓ stopping (3 ms)\n`)
    expect(out.text().endsWith(`✓ stopping (3 ms)\n${CLEAR}rollouts 9 · failures 0 · mean reward –`)).toBe(
      true,
    )
  })

  it('draws nothing while the app has no count (a plain listener)', async () => {
    fakeRefreshTimers()
    const out = fakeTty()
    let reads = 0
    started(out, () => void (reads += 1))
    vi.advanceTimersByTime(20) // four refresh periods pass
    expect(reads).toBeGreaterThanOrEqual(4) // it did look, each period
    expect(out.text()).toBe('')
  })
})

describe('StatusLine off a TTY, or disabled', () => {
  it.each([
    ['not a TTY', fakeTty(false), true],
    ['a TTY with --log-level error/silent', fakeTty(true), false],
  ])('%s: the stream passes through and nothing is drawn', async (_name, out, enabled) => {
    fakeRefreshTimers()
    const status = new StatusLine(out, { enabled, refreshMs: 5 })
    onTestFinished(() => status.stop())
    expect(status.stream).toBe(out)
    status.start(counter({ rollouts: 3 }).read)
    expect(vi.getTimerCount()).toBe(0) // no refresh timer at all
    vi.advanceTimersByTime(20)
    status.stream.write('line\n')
    status.stop()
    expect(out.text()).toBe('line\n')
  })
})

describe('taskapp serve on a TTY', () => {
  it('shows the running count of the rollouts it serves, and erases it when stopping', async () => {
    const io = captureIo(true)
    const proc = new FakeProcess()
    const done = runCli(
      ['serve', ECHO_APP, '--port', '0', '--tunnel', 'local'],
      io,
      { ENVIRONMENT_API_KEY: 'status-key-123456' },
      proc,
    )
    onTestFinished(async () => {
      if (proc.listenerCount('SIGTERM') > 0) proc.emit('SIGTERM')
      await done
    })
    await expect.poll(() => io.out(), { timeout: 20_000, interval: 10 }).toContain('Press Ctrl+C')
    await expect.poll(() => io.err()).toContain('rollouts 0 · failures 0 · mean reward –')
    const url = /local: +(\S+)/.exec(io.out())?.[1] ?? ''
    for (const seed of [2, 3, 4]) {
      const res = await fetch(`${url}/rollout`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'status-key-123456' },
        body: JSON.stringify({ trace_correlation_id: `t${seed}`, env: { seed }, policy: {} }),
      })
      expect(res.status).toBe(200)
    }
    await expect.poll(() => io.err()).toContain(`${CLEAR}rollouts 3 · failures 0 · mean reward 0.67`)
    proc.emit('SIGINT')
    expect(await done).toBe(130)
    const after = io.err().slice(io.err().lastIndexOf('rollouts 3'))
    expect(after.startsWith(`rollouts 3 · failures 0 · mean reward 0.67${CLEAR}… stopping (SIGINT)`)).toBe(
      true,
    )
  })
})
