/**
 * Helpers of the install tests, which use the packages the way a user does before they are
 * published: `pnpm pack` each publishable package (from its built `dist/`; `pnpm test` builds
 * first), then `npm install` the tarballs into a temporary project outside the repo. npm fetches
 * the third-party dependencies from the registry, through one cache shared by every run, so
 * only the first run downloads them.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from './test-helpers'

const run = promisify(execFile)

/** The npm cache every install test shares (kept between runs). */
export const NPM_CACHE: string = join(tmpdir(), 'taskapp-test-npm-cache')

/** The publishable packages (not `private`), by name, with their directory. */
export function publishablePackages(): Map<string, string> {
  const found = new Map<string, string>()
  for (const dir of readdirSync(join(REPO_ROOT, 'packages'))) {
    const file = join(REPO_ROOT, 'packages', dir, 'package.json')
    if (!existsSync(file)) continue
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name: string; private?: boolean }
    if (pkg.private !== true) found.set(pkg.name, join(REPO_ROOT, 'packages', dir))
  }
  return found
}

/**
 * The environment of a user's shell: this process's, without what the test runner, pnpm or the
 * developer's own taskapp settings put there (`NODE_OPTIONS` with the `@taskapp/source`
 * condition, `npm_*` config, `TASKAPP_*` and the Synth keys), and with the shared npm cache.
 */
export function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  const dropped = /^(?:NODE_OPTIONS|npm_|pnpm_|PNPM_|VITEST|TASKAPP_|SYNTH_|ENVIRONMENT_API_KEY)/i
  for (const [name, value] of Object.entries(process.env)) if (!dropped.test(name)) env[name] = value
  return {
    ...env,
    npm_config_cache: NPM_CACHE,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    ...extra,
  }
}

/** A command's output, or an error carrying it (a failed install says why). */
export async function sh(
  command: string,
  args: readonly string[],
  cwd: string,
  timeoutMs = 180_000,
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(command, [...args], { cwd, env: userEnv(), timeout: timeoutMs, maxBuffer: 32 << 20 })
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string }
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout}\n${e.stderr}`, {
      cause: err,
    })
  }
}

/** A temporary directory outside the repo, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `taskapp-${prefix}-`))
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/**
 * `pnpm pack`s the given publishable packages (default: all) into `dest`, in one recursive run;
 * returns the tarball paths by package name. Fails when a package has no `dist/`: run
 * `pnpm build` first.
 */
export async function packTarballs(
  dest: string,
  names: readonly string[] = [...publishablePackages().keys()],
): Promise<Map<string, string>> {
  const packages = publishablePackages()
  for (const name of names) {
    const dir = packages.get(name)
    if (dir === undefined) throw new Error(`${name} is not a publishable workspace package`)
    if (!existsSync(join(dir, 'dist'))) {
      throw new Error(`${dir}/dist is missing: run \`pnpm build\` first (\`pnpm test\` does)`)
    }
  }
  const filters = names.flatMap((name) => ['--filter', name])
  await sh('pnpm', ['-r', ...filters, 'pack', '--pack-destination', dest], REPO_ROOT)
  const tarballs = new Map<string, string>()
  for (const name of names) {
    // pnpm names a tarball after the package: @taskapp/core@0.0.0 → taskapp-core-0.0.0.tgz
    const { version } = JSON.parse(readFileSync(join(packages.get(name) ?? '', 'package.json'), 'utf8')) as {
      version: string
    }
    const file = join(dest, `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`)
    if (!existsSync(file)) throw new Error(`pnpm pack wrote no ${file}`)
    tarballs.set(name, file)
  }
  return tarballs
}

/** `npm install`s `specs` (tarball paths, `name@version`) in `cwd`, as a user would. */
export async function npmInstall(cwd: string, specs: readonly string[], flags: readonly string[] = []) {
  return sh('npm', ['install', '--prefer-offline', '--loglevel=error', ...flags, ...specs], cwd)
}

/**
 * The name of every installed package in an `npm ls --all --json` tree (npm also lists a
 * missing optional peer, as an entry without a version: left out).
 */
export function namesInTree(tree: unknown, into = new Set<string>()): Set<string> {
  type Node = { version?: string; dependencies?: Record<string, Node> }
  for (const [name, sub] of Object.entries((tree as Node | null)?.dependencies ?? {})) {
    if (sub.version !== undefined) into.add(name)
    namesInTree(sub, into)
  }
  return into
}
