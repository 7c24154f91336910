/**
 * Loading a TypeScript task-app file: through tsx, an optional peer dependency imported on first
 * use, and always as an ES module, whatever the `type` of the nearest package.json says. In a
 * CommonJS project (`npm init` without `"type": "module"`) tsx would compile the file to
 * CommonJS: top-level `await` fails there, and `import '@taskapp/sdk'` turns into a `require()`
 * of an ES module that breaks inside undici (`TypeError: Illegal constructor`).
 */
import { register } from 'node:module'
import { pathToFileURL } from 'node:url'
import { InProcessError } from './errors'

/** The query parameter that marks a file loaded by {@link importTypeScript}, and its imports. */
const MARK = 'taskapp-esm'

/**
 * A module resolve hook that runs after tsx's (tsx calls it as its `nextResolve`). A `.ts`,
 * `.mts` or `.tsx` file imported from a marked parent is marked too and resolved with format
 * `module`, which tsx keeps and compiles as ESM. tsx strips queries before calling it, so the
 * mark travels on the parent: the importer passes a marked `parentURL`, and each marked file
 * marks the TypeScript files it imports. Files under node_modules and other formats keep what
 * Node and tsx decide.
 */
const HOOKS = `
const MARK = ${JSON.stringify(MARK)}
export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context)
  const parent = context.parentURL
  if (!parent || !parent.startsWith('file:') || !resolved.url.startsWith('file:')) return resolved
  if (!new URL(parent).searchParams.has(MARK)) return resolved
  const url = new URL(resolved.url)
  if (!/\\.(?:ts|mts|tsx)$/.test(url.pathname) || url.pathname.includes('/node_modules/')) return resolved
  url.searchParams.set(MARK, '')
  return { ...resolved, url: url.href, format: 'module' }
}
`

let hooksRegistered = false

/** Registers {@link HOOKS} once per process, before tsx registers its own (so they run after). */
function registerEsmHooks(): void {
  if (hooksRegistered) return
  register(`data:text/javascript,${encodeURIComponent(HOOKS)}`)
  hooksRegistered = true
}

/** The part of tsx's `tsx/esm/api` used here. */
export interface TsxApi {
  tsImport(specifier: string, options: { parentURL: string }): Promise<unknown>
}

/** Imports tsx's ESM API. Internal seam: a test passes one that fails like a missing package. */
export type TsxLoader = () => Promise<TsxApi>

const loadTsx: TsxLoader = () => import('tsx/esm/api')

/** True when `err` is Node's "package tsx not found" (not, say, tsx failing to find esbuild). */
function isTsxMissing(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null
  const code = typeof e?.code === 'string' ? e.code : ''
  const message = typeof e?.message === 'string' ? e.message : ''
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && /['"]tsx['"/]/.test(message)
}

/**
 * Imports the TypeScript file at `path` (absolute) as an ES module through tsx. Throws
 * `TASKAPP_ERR_TSX_MISSING` when tsx is not installed; other failures (the file throws, a
 * syntax error) propagate as they are.
 * @internal
 */
export async function importTypeScript(
  path: string,
  load: TsxLoader = loadTsx,
): Promise<Record<string, unknown>> {
  let tsx: TsxApi
  try {
    tsx = await load()
  } catch (err) {
    if (!isTsxMissing(err)) throw err
    throw new InProcessError(
      'TASKAPP_ERR_TSX_MISSING',
      `Loading the TypeScript file ${path} needs the package tsx, which is not installed: ` +
        'add it (npm install tsx), or give a .js/.mjs file. (@taskapp/sdk includes tsx.)',
      { cause: err },
    )
  }
  registerEsmHooks()
  const parent = new URL(import.meta.url)
  parent.searchParams.set(MARK, '')
  const mod = await tsx.tsImport(pathToFileURL(path).href, { parentURL: parent.href })
  return mod as Record<string, unknown>
}
