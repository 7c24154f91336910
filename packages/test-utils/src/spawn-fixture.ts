import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import type { Readable } from 'node:stream'

/** How a process ended: its exit code, or the signal that killed it. */
export interface ProcessExit {
  code: number | null
  signal: NodeJS.Signals | null
}

/** Options of {@link spawnFixture} and {@link spawnProcess}. */
export interface SpawnFixtureOptions {
  /** Working directory. @default process.cwd() */
  cwd?: string
  /** Added to (and overriding) `process.env`. @default {} */
  env?: NodeJS.ProcessEnv
  /** `'pipe'` to write to the child's stdin (`child.stdin`). @default 'ignore' */
  stdin?: 'pipe' | 'ignore'
  /** Extra Node flags before the script (e.g. `['--expose-gc']`), for {@link spawnFixture}. @default [] */
  execArgv?: readonly string[]
}

/** A running child process with its output captured; `await using` kills its whole group. */
export interface FixtureProcess extends AsyncDisposable {
  readonly child: ChildProcess
  readonly pid: number
  /** Everything written to stdout so far. */
  stdout(): string
  /** Everything written to stderr so far. */
  stderr(): string
  /** The complete stdout lines that parse as JSON objects, in order (others are skipped). */
  jsonLines(): Record<string, unknown>[]
  /** Settles with how the process ended. */
  readonly exited: Promise<ProcessExit>
  /**
   * Resolves with the first stdout line (seen or future) matching `pattern`; rejects when the
   * process exits first or after `timeoutMs`, with the output so far in the message.
   * @default timeoutMs 30_000
   */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>
  /**
   * Like {@link FixtureProcess.waitForLine} for JSON lines: resolves with the first JSON object
   * line for which `predicate` holds. `what` names it in the error.
   * @default timeoutMs 30_000
   */
  waitForJson(
    predicate: (line: Record<string, unknown>) => boolean,
    what?: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>
  /** SIGKILLs the process group (the process and any descendant left) and waits for the exit. */
  close(): Promise<void>
}

/** Node flags that run a TypeScript entry from source: tsx and the `@taskapp/source` condition. */
export const NODE_TS_ARGS: readonly string[] = ['--conditions=@taskapp/source', '--import', 'tsx']

/**
 * Runs a TypeScript fixture as a real child process:
 * `node --conditions=@taskapp/source --import tsx <file> ...args`, as the leader of a new
 * process group, with stdout and stderr captured. Disposing it kills the whole group, so no
 * descendant outlives the test.
 *
 * @example
 * ```ts
 * await using app = spawnFixture(join(import.meta.dirname, 'fixtures/app.ts'), ['--port', '0'])
 * const [, port] = await app.waitForLine(/^listening on (\d+)$/)
 * app.child.kill('SIGINT')
 * expect((await app.exited).code).toBe(130)
 * ```
 */
export function spawnFixture(
  file: string,
  args: readonly string[] = [],
  options: SpawnFixtureOptions = {},
): FixtureProcess {
  return spawnProcess(
    process.execPath,
    [...NODE_TS_ARGS, ...(options.execArgv ?? []), file, ...args],
    options,
  )
}

/** The captured output of a child process, and who to wake when it changes. */
interface OutputCapture {
  /** Everything written to stdout so far. */
  readonly out: () => string
  /** Everything written to stderr so far. */
  readonly err: () => string
  /** The process has exited. */
  readonly done: () => boolean
  /** Called on new stdout data and on exit. */
  readonly wakers: Set<() => void>
  /** Settles with how the process ended. */
  readonly exited: Promise<ProcessExit>
}

/** Collects the child's stdout and stderr and watches for its exit. */
function captureOutput(child: ChildProcess, stdout: Readable, stderr: Readable): OutputCapture {
  let out = ''
  let err = ''
  let done = false
  const wakers = new Set<() => void>()
  const wake = (): void => {
    for (const waker of [...wakers]) waker()
  }
  stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
    wake()
  })
  stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk
  })
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true
      resolve({ code, signal })
      wake()
    })
  })
  return { out: () => out, err: () => err, done: () => done, wakers, exited }
}

/** The complete (newline-terminated) lines of `text`. */
function completeLines(text: string): string[] {
  return text.split('\n').slice(0, -1)
}

/** The lines of `lines` that parse as JSON objects, in order. */
function parseJsonLines(lines: readonly string[]): Record<string, unknown>[] {
  const parsed: Record<string, unknown>[] = []
  for (const line of lines) {
    try {
      const value: unknown = JSON.parse(line)
      if (typeof value === 'object' && value !== null) parsed.push(value as Record<string, unknown>)
    } catch {
      // not a JSON line
    }
  }
  return parsed
}

/** The match of the first line of `lines` matching `pattern`, if any. */
function firstMatch(lines: readonly string[], pattern: RegExp): RegExpMatchArray | undefined {
  for (const line of lines) {
    const match = line.match(pattern)
    if (match) return match
  }
  return undefined
}

/** Waits until `find` returns a value, the process exits, or the deadline passes. */
function waitUntilFound<T>(
  capture: OutputCapture,
  find: () => T | undefined,
  what: string,
  timeoutMs: number,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const finish = (): void => {
      clearTimeout(timer)
      capture.wakers.delete(check)
    }
    const fail = (why: string): void => {
      finish()
      reject(new Error(`${why} ${what}\nstdout:\n${capture.out()}\nstderr:\n${capture.err()}`))
    }
    const check = (): void => {
      const found = find()
      if (found !== undefined) {
        finish()
        resolve(found)
      } else if (capture.done()) {
        fail('process exited before printing')
      }
    }
    const timer = setTimeout(() => fail(`no line within ${timeoutMs} ms:`), timeoutMs)
    timer.unref()
    capture.wakers.add(check)
    check()
  })
}

/** A `close` that SIGKILLs the process group once, waits for the exit and destroys the streams. */
function groupCloser(child: ChildProcess, pid: number, exited: Promise<ProcessExit>): () => Promise<void> {
  let closing: Promise<void> | undefined
  return () =>
    (closing ??= (async () => {
      try {
        // The whole group: the process and whatever it started that is still there.
        process.kill(-pid, 'SIGKILL')
      } catch {
        // no member left
      }
      await exited
      child.stdout?.destroy()
      child.stderr?.destroy()
      child.stdin?.destroy()
    })())
}

/**
 * Like {@link spawnFixture}, for any command (`execArgv` is ignored).
 *
 * @example
 * ```ts
 * await using pnpm = spawnProcess('pnpm', ['--version'])
 * expect((await pnpm.exited).code).toBe(0)
 * ```
 */
export function spawnProcess(
  command: string,
  args: readonly string[],
  options: SpawnFixtureOptions = {},
): FixtureProcess {
  const child = spawn(command, [...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
    detached: true,
  })
  const { pid, stdout, stderr } = child
  if (pid === undefined || stdout === null || stderr === null) {
    throw new Error(`spawnProcess: could not spawn ${command}`)
  }
  const capture = captureOutput(child, stdout, stderr)
  const jsonLines = (): Record<string, unknown>[] => parseJsonLines(completeLines(capture.out()))
  const close = groupCloser(child, pid, capture.exited)
  return {
    child,
    pid,
    stdout: capture.out,
    stderr: capture.err,
    jsonLines,
    exited: capture.exited,
    waitForLine: (pattern, timeoutMs = 30_000) =>
      waitUntilFound(
        capture,
        () => firstMatch(completeLines(capture.out()), pattern),
        String(pattern),
        timeoutMs,
      ),
    waitForJson: (predicate, what = 'a matching JSON line', timeoutMs = 30_000) =>
      waitUntilFound(capture, () => jsonLines().find(predicate), what, timeoutMs),
    close,
    [Symbol.asyncDispose]: close,
  }
}
