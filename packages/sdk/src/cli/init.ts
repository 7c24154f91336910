/**
 * `taskapp init [dir]`: writes the starter project of `init-template.ts` into a directory, so a
 * new user goes from nothing to a served task app with `npm install && npm start`.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { basename, join, relative, resolve } from 'node:path'
import pkg from '../../package.json' with { type: 'json' }
import type { InitCommand } from './args'
import { usage } from './flag-table'
import { packageNameOf, starterFiles, type StarterVersions } from './init-template'
import type { CliIo } from './output'

/** The versions the starter pins: this sdk's own, and the tsx it depends on. */
export const STARTER_VERSIONS: StarterVersions = {
  sdk: pkg.version,
  tsx: pkg.dependencies.tsx,
}

/** Entries that do not make a directory "non-empty" (a fresh `git init`). */
const IGNORED = new Set(['.git'])

/** The entries of `dir` that count (none when it does not exist); throws when it is a file. */
async function existingEntries(dir: string, shown: string): Promise<string[]> {
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return []
    if (code === 'ENOTDIR') {
      throw usage('init', `${shown} is a file, not a directory: give a new or empty directory.`)
    }
    throw err
  }
  return entries.filter((name) => !IGNORED.has(name)).sort()
}

/** How to refer to `dir` in messages and in the `cd` line: relative to the working directory. */
function shownPath(dir: string): string {
  const rel = relative(process.cwd(), dir)
  return rel === '' ? '.' : rel.startsWith('..') ? dir : `./${rel}`
}

/**
 * Runs `taskapp init`: refuses a non-empty directory (exit status 2) unless `--force`, creates
 * the directory when missing, writes the starter's files and prints what to run next.
 *
 * @example
 * ```ts
 * await runInit({ command: 'init', dir: 'my-app', force: false }, { stdout: process.stdout, stderr: process.stderr })
 * ```
 */
export async function runInit(cmd: InitCommand, io: CliIo): Promise<number> {
  const dir = resolve(cmd.dir)
  const shown = shownPath(dir)
  const entries = await existingEntries(dir, shown)
  if (entries.length > 0 && !cmd.force) {
    const listed = entries.length > 5 ? `${entries.slice(0, 5).join(', ')}, ...` : entries.join(', ')
    throw usage(
      'init',
      `${shown} is not empty (${listed}): give a new or empty directory, or pass --force to write ` +
        "the starter's files into it (files of the same name are replaced, others stay).",
    )
  }
  await mkdir(dir, { recursive: true })
  const files = starterFiles(packageNameOf(basename(dir)), STARTER_VERSIONS)
  for (const [name, content] of files) await writeFile(join(dir, name), content)
  const cd = shown === '.' ? '' : `  cd ${shown}\n`
  io.stdout.write(
    `Wrote a task app project in ${shown}: ${files.map(([name]) => name).join(', ')}\n\n` +
      `Next:\n${cd}  npm install\n  npm start     # serves task-app.ts and prints its URL\n` +
      '  npm test      # the reward, and one rollout over HTTP\n',
  )
  return 0
}
