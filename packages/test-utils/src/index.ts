/**
 * `@taskapp/test-utils`: the helpers the taskapp test suites share. Private and source-only:
 * never built, never published. Wait for conditions with Vitest's `vi.waitFor` / `expect.poll`.
 */
export { deferred } from './deferred'
export type { Deferred } from './deferred'
export { listenLoopback } from './listen-loopback'
export type { LoopbackServer } from './listen-loopback'
export { isProcessAlive } from './process'
export { recordingLogger } from './recording-logger'
export type { LogRecord, RecordingLogger } from './recording-logger'
export { NODE_TS_ARGS, spawnFixture, spawnProcess } from './spawn-fixture'
export type { FixtureProcess, ProcessExit, SpawnFixtureOptions } from './spawn-fixture'
export { startRedisServer } from './redis-server'
export type { TestRedisServer } from './redis-server'
export { launchBrowser, screenshotPath, SYSTEM_CHROMIUM } from './browser'
export type { TestBrowser } from './browser'
