import { existsSync, mkdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import type { Browser, BrowserContext } from 'playwright-core'

/** Where Debian's Chromium lives (`apt-get install -y chromium`; `.ci/run` installs it). */
export const SYSTEM_CHROMIUM = process.env.TASKAPP_TEST_CHROMIUM ?? '/usr/bin/chromium'

/**
 * Flags for a closed network: without the background-networking ones Chromium keeps trying
 * Google's hosts, which this machine refuses.
 */
const CLOSED_NETWORK_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** A headless system Chromium with its own empty profile (see {@link launchBrowser}). */
export interface TestBrowser extends AsyncDisposable {
  readonly browser: Browser
  /** A fresh context (cookies, storage) per call; closed with the browser. */
  context(): Promise<BrowserContext>
  /** Closes the browser (its profile folder goes with it). Idempotent. */
  close(): Promise<void>
}

/**
 * Launches the system Chromium through playwright-core (no downloaded browser), headless, for
 * loopback pages only. Throws a clear error naming the install command when it is missing.
 *
 * @example
 * ```ts
 * await using b = await launchBrowser()
 * const page = await (await b.context()).newPage()
 * await page.goto('http://127.0.0.1:8000/jobs')
 * ```
 */
export async function launchBrowser(): Promise<TestBrowser> {
  if (!existsSync(SYSTEM_CHROMIUM)) {
    throw new Error(
      `no Chromium at ${SYSTEM_CHROMIUM}: install it with 'apt-get install -y chromium' (bash .ci/run does)`,
    )
  }
  // playwright gives each launch its own new empty profile folder and removes it on close
  const browser = await chromium.launch({
    executablePath: SYSTEM_CHROMIUM,
    headless: true,
    args: CLOSED_NETWORK_FLAGS,
  })
  let closed = false
  const b: TestBrowser = {
    browser,
    context: () => browser.newContext(),
    async close() {
      if (closed) return
      closed = true
      await browser.close()
    },
    [Symbol.asyncDispose]: () => b.close(),
  }
  return b
}

/**
 * The folder tests write screenshots to: `test-output/screenshots` at the repository root
 * (git-ignored), created on demand. Returns the full path of `name`.
 */
export function screenshotPath(name: string): string {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
  const dir = join(root, 'test-output', 'screenshots')
  mkdirSync(dir, { recursive: true })
  return join(dir, name)
}
