import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { recordingLogger } from '@taskapp/test-utils'
import { describe, expect, it, onTestFinished } from 'vitest'
import { CloudflareTunnelError } from '../errors'
import { spawnSupervised } from '../supervised-process'
import { findSetpriv, parentDeathWrapper, setprivCandidates, wrapperCommand } from './pdeathsig'

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cf-pdeathsig-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  return dir
}

describe('the parent-death signal wrapper (setpriv)', () => {
  it('looks in the absolute PATH entries, then the system folders, each once', () => {
    expect(setprivCandidates(['/opt/x/bin', '.', 'rel/bin', '', '/usr/bin'].join(':'))).toEqual([
      '/opt/x/bin/setpriv',
      '/usr/bin/setpriv',
      '/bin/setpriv',
      '/usr/sbin/setpriv',
      '/sbin/setpriv',
    ])
  })

  it("finds this machine's setpriv, which sets the signal and execs", async () => {
    const found = await findSetpriv(setprivCandidates())
    expect(found).toMatch(/\/setpriv$/)
  })

  it('skips a setpriv without --pdeathsig (util-linux < 2.33) and a missing one', async () => {
    const dir = await tempDir()
    const old = join(dir, 'setpriv')
    // What an old setpriv does with an option it does not know.
    await writeFile(old, '#!/bin/sh\necho "setpriv: unrecognized option \'$1\'" >&2\nexit 1\n')
    await chmod(old, 0o755)
    expect(await findSetpriv([join(dir, 'missing', 'setpriv'), old])).toBeUndefined()
  })

  it('TASKAPP_CLOUDFLARED_PDEATHSIG=0 turns it off (said at DEBUG); 1 or unset keeps it', async () => {
    const logger = recordingLogger()
    expect(await parentDeathWrapper({ TASKAPP_CLOUDFLARED_PDEATHSIG: '0' }, logger)).toBeUndefined()
    expect(logger.records).toContainEqual(
      expect.objectContaining({ level: 'debug', msg: 'cloudflared parent-death signal switched off' }),
    )
    expect(await parentDeathWrapper({ TASKAPP_CLOUDFLARED_PDEATHSIG: '1' }, logger)).toMatch(/\/setpriv$/)
    expect(await parentDeathWrapper({}, logger)).toMatch(/\/setpriv$/)
  })

  it('any other value of TASKAPP_CLOUDFLARED_PDEATHSIG is a typed error naming it', async () => {
    const err = await parentDeathWrapper({ TASKAPP_CLOUDFLARED_PDEATHSIG: 'yes' }, recordingLogger()).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(CloudflareTunnelError)
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_INVALID_OPTIONS' })
    expect((err as Error).message).toMatch(/TASKAPP_CLOUDFLARED_PDEATHSIG must be 0 .* or 1/)
  })

  it("reports the wrapper's own exec failure as a spawn error, as Node reports its own", async () => {
    const setpriv = await findSetpriv(setprivCandidates())
    const dir = await tempDir()
    const file = join(dir, 'cloudflared')
    await writeFile(file, '#!/nonexistent/interpreter\n')
    await chmod(file, 0o755)
    const proc = spawnSupervised({
      file,
      args: ['tunnel'],
      env: process.env,
      killGraceMs: 100,
      onLine: () => {},
      wrapper: wrapperCommand(setpriv!),
    })
    const status = await proc.exited
    expect(status).toMatchObject({ code: 127, signal: null })
    expect(status.spawnError?.message).toContain(`setpriv: failed to execute ${file}`)
  })

  it('a program that exits 127 on its own is not a spawn error', async () => {
    const setpriv = await findSetpriv(setprivCandidates())
    const proc = spawnSupervised({
      file: process.execPath,
      args: ['-e', 'console.error("setpriv-like words"); process.exit(127)'],
      env: process.env,
      killGraceMs: 100,
      onLine: () => {},
      wrapper: wrapperCommand(setpriv!),
    })
    const status = await proc.exited
    expect(status).toEqual({ code: 127, signal: null })
  })
})
