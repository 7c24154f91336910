/**
 * `runInProcessJob`'s own SIGINT/SIGTERM handling (`handleSignals`, on by default), in a real
 * process: the signal cancels the job on the backend and stops the task app, then the process dies
 * of the signal as Node would have.
 */
import { join } from 'node:path'
import { isPortAvailable } from '@taskapp/port-manager'
import { spawnFixture } from '@taskapp/test-utils'
import { describe, expect, it } from 'vitest'
import { BACKEND_KEY, backendStatus, startBackend } from './fixtures/job-helpers'

const FIXTURE = join(import.meta.dirname, 'fixtures/run-job-process.ts')

describe('runInProcessJob on a signal', { timeout: 60_000 }, () => {
  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s: cancels the job, stops the app, then the process dies of the signal',
    async (signal) => {
      const { backend, trustedKey } = await startBackend({ signing: true })
      await using child = spawnFixture(FIXTURE, [], {
        env: { BACKEND_URL: backend.url, SYNTH_API_KEY: BACKEND_KEY, TRUSTED_KEY: trustedKey ?? '' },
      })
      const started = await child.waitForJson(
        (l) => l.phase === 'task-app-started',
        'task-app-started',
        45_000,
      )
      const submitted = await child.waitForJson((l) => l.phase === 'submitted', 'submitted', 30_000)
      const jobId = submitted.jobId as string
      await expect
        .poll(async () => (await backendStatus(backend, jobId)).status, { timeout: 20_000, interval: 50 })
        .toBe('running')
      child.child.kill(signal)
      expect(await child.exited).toEqual({ code: null, signal })
      expect(await backendStatus(backend, jobId)).toMatchObject({ status: 'cancelled' })
      expect(child.jsonLines().map((l) => l.phase)).toEqual([
        'task-app-started',
        'submitted',
        'cancelling',
        'finished',
      ])
      expect(child.jsonLines().at(-1)).toMatchObject({ status: 'cancelled' })
      expect(child.stdout()).not.toContain('DONE')
      expect(await isPortAvailable(Number(new URL(started.url as string).port), { host: '127.0.0.1' })).toBe(
        true,
      )
    },
  )
})
