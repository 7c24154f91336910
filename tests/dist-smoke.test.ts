/**
 * The built packages, loaded as a user loads them: a plain `node` child process (no
 * `@taskapp/source` condition) imports every package from its `dist/`, throws errors across entry
 * points and serves a task app locally and through a real relay on loopback
 * (`fixtures/dist-smoke.mjs`). `pnpm test` builds first, so `dist/` is current.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { publicEntrySpecifiers } from './fixtures/workspace-entries.mjs'
import { REPO_ROOT } from './test-helpers'

const specifiers = publicEntrySpecifiers()

interface Report {
  resolved: Record<string, string>
  exports: Record<string, string[]>
  checks: Record<string, Record<string, unknown>>
}

let report: Report

beforeAll(async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['fixtures/dist-smoke.mjs'], {
    cwd: join(REPO_ROOT, 'tests'),
    timeout: 30_000,
    // The child must resolve packages the way a user's Node does: no conditions inherited.
    env: { ...process.env, NODE_OPTIONS: '' },
  })
  report = JSON.parse(stdout) as Report
}, 40_000)

describe('built packages (dist/)', () => {
  it('covers every public entry of every published package', () => {
    expect(specifiers).toEqual(
      expect.arrayContaining(['@taskapp/core', '@taskapp/sdk', '@taskapp/tunnel-synth/relay']),
    )
    expect(Object.keys(report.resolved).sort()).toEqual(specifiers)
  })

  it.each(specifiers)('%s resolves to its dist/ and exports what its source exports', async (specifier) => {
    expect(report.resolved[specifier]).toMatch(/[/\\]dist[/\\][a-z-]+\.js$/)
    const source = (await import(specifier)) as Record<string, unknown>
    expect(report.exports[specifier]).toEqual(Object.keys(source).sort())
  })

  it('an error from the relay entry is one class across entry points and one TaskappError family', () => {
    expect(report.checks.relayError).toEqual({
      thrown: true,
      code: 'TASKAPP_ERR_SYNTH_RELAY_INVALID_OPTIONS',
      name: 'SynthTunnelError',
      sdkSynthTunnelError: true,
      agentEntrySynthTunnelError: true,
      sdkReexportsRelayEntry: true,
      oneClassAcrossEntries: true,
      taskappError: true,
      sdkTaskappError: true,
      notPortManagerError: true,
    })
  })

  it('an in-process options error is an InProcessError and a TaskappError', () => {
    expect(report.checks.optionsError).toEqual({
      thrown: true,
      code: 'TASKAPP_ERR_NO_INPUT',
      inProcessError: true,
      taskappError: true,
    })
  })

  it('a task app in local mode answers /health', () => {
    expect(report.checks.local).toMatchObject({ status: 200, body: { healthy: true } })
    expect(report.checks.local?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  })

  it('a task app through a real relay answers with the tunnel headers and refuses without them', () => {
    expect(report.checks.relay).toMatchObject({
      tunnelMode: 'synthtunnel',
      throughRelay: true,
      status: 200,
      body: { task: { id: 'dist-smoke' }, task_metadata: { seed: 3 } },
      withoutHeaders: 401,
    })
  })
})
