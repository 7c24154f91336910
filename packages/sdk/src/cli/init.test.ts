import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import pkg from '../../package.json' with { type: 'json' }
import { FakeProcess, captureIo } from '../test-helpers'
import { parseCommand } from './args'
import { packageNameOf } from './init-template'
import { runCli } from './main'

const FILES = ['.gitignore', 'README.md', 'package.json', 'task-app.test.ts', 'task-app.ts', 'tsconfig.json']

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'taskapp-init-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function cli(argv: string[]) {
  const io = captureIo()
  const status = await runCli(argv, io, {}, new FakeProcess())
  return { status, out: io.out(), err: io.err() }
}

describe('taskapp init', () => {
  it('writes the starter into a new directory and says what to run next', async () => {
    const dir = join(tempDir(), 'My Task App')
    const r = await cli(['init', dir])
    expect(r).toMatchObject({ status: 0, err: '' })
    expect(readdirSync(dir).sort()).toEqual(FILES)
    expect(r.out).toContain(`cd ${dir}\n  npm install\n  npm start`)
    const written = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>
    expect(written).toMatchObject({
      name: 'my-task-app',
      type: 'module',
      scripts: { start: 'taskapp serve task-app.ts', test: 'node --import tsx --test task-app.test.ts' },
      dependencies: { '@taskapp/sdk': `^${pkg.version}` },
      devDependencies: { tsx: `^${pkg.dependencies.tsx}` },
    })
    expect(readFileSync(join(dir, 'task-app.ts'), 'utf8')).toContain("from '@taskapp/sdk'")
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toMatch(/npm start/)
  })

  it('refuses a non-empty directory (exit 2), naming what is there and --force; writes nothing', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'notes.txt'), 'mine')
    const r = await cli(['init', dir])
    expect(r.status).toBe(2)
    expect(r.out).toBe('')
    expect(r.err).toMatch(/^taskapp init: .* is not empty \(notes\.txt\): .*pass --force/)
    expect(readdirSync(dir)).toEqual(['notes.txt'])
  })

  it('--force writes into a non-empty directory: same names replaced, other files kept', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'notes.txt'), 'mine')
    writeFileSync(join(dir, 'task-app.ts'), 'old')
    expect((await cli(['init', dir, '--force'])).status).toBe(0)
    expect(readdirSync(dir).sort()).toEqual([...FILES, 'notes.txt'].sort())
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('mine')
    expect(readFileSync(join(dir, 'task-app.ts'), 'utf8')).toContain('defineTaskAppConfig')
  })

  it('a directory holding only .git (a fresh git init) counts as empty', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, '.git'))
    expect((await cli(['init', dir])).status).toBe(0)
    expect(readdirSync(dir).sort()).toEqual(['.git', ...FILES].sort())
  })

  it('defaults to the working directory', async () => {
    const dir = tempDir()
    const cwd = process.cwd()
    process.chdir(dir)
    try {
      const r = await cli(['init'])
      expect(r.status).toBe(0)
      expect(r.out).not.toContain('cd ')
    } finally {
      process.chdir(cwd)
    }
    expect(readdirSync(dir).sort()).toEqual(FILES)
  })

  it('a file where the directory should be → exit 2', async () => {
    const file = join(tempDir(), 'taken')
    writeFileSync(file, '')
    const r = await cli(['init', file])
    expect(r.status).toBe(2)
    expect(r.err).toMatch(/is a file, not a directory/)
  })

  it('parses [dir] and --force; two directories or an unknown flag are usage errors', async () => {
    expect(parseCommand(['init'])).toEqual({ command: 'init', dir: '.', force: false })
    expect(parseCommand(['init', 'x', '--force'])).toEqual({ command: 'init', dir: 'x', force: true })
    expect(parseCommand(['init', '--help'])).toEqual({ command: 'help', topic: 'init' })
    expect(() => parseCommand(['init', 'a', 'b'])).toThrow(/expected at most one directory, got 2: a b/)
    expect((await cli(['init', '--fast'])).status).toBe(2)
    expect((await cli(['help', 'init'])).out).toMatch(/^Usage: taskapp init \[dir\]/)
  })

  it.each([
    ['My Task App', 'my-task-app'],
    ['.hidden', 'hidden'],
    ['app_v2', 'app_v2'],
    ['***', 'task-app'],
  ])('package name of %j is %j', (dir, name) => {
    expect(packageNameOf(dir)).toBe(name)
  })
})
