/**
 * Finds the environment variables the packages read: `env.X` / `process.env.X` / `ctx.env.X`,
 * `env['X']`, and string literals that are exactly a variable name of ours (the names read
 * through a helper, a constant or a table). Comments are not code, so names in docs never count.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import ts from 'typescript'

/** A name looks like one of our variables (error and deprecation codes excluded). */
const OUR_NAME =
  /^(?:TASKAPP_(?!ERR_|DEP_)[A-Z0-9_]+|SYNTH_[A-Z0-9_]+|CLOUDFLARED?_[A-Z0-9_]+|(?:DEV_)?ENVIRONMENT_API_KEY(?:_ALIASES)?|dev_environment_api_key)$/
/** What `env.X` may be: an upper-case name (or Windows' `Path`); `request.env.seed` is not one. */
const ENV_PROPERTY = /^(?:[A-Z][A-Z0-9_]*|Path)$/

/** `env.X` or `env['X']` inside code that is kept in a string. */
const EMBEDDED_READ = /\benv(?:\.([A-Z][A-Z0-9_]*)\b|\[['"]([A-Za-z_]\w*)['"]\])/g

/** Source files of the packages, without tests, test helpers, fixtures and the test-utils package. */
export function sourceFiles(root: string): string[] {
  const out: string[] = []
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) {
        if (entry.name !== 'fixtures' && entry.name !== 'node_modules') walk(path)
      } else if (/\.ts$/.test(entry.name) && !/\.test\.ts$|^test-helpers\.ts$/.test(entry.name)) {
        out.push(path)
      }
    }
  }
  for (const pkg of readdirSync(join(root, 'packages'))) {
    if (pkg !== 'test-utils') walk(join(root, 'packages', pkg, 'src'))
  }
  return out
}

/** Whether `node` is `env`, `process.env` or `<anything>.env`. */
function isEnv(node: ts.Expression): boolean {
  return (
    (ts.isIdentifier(node) && node.text === 'env') ||
    (ts.isPropertyAccessExpression(node) && node.name.text === 'env')
  )
}

/** Every variable name read in `file`'s code. */
export function envNamesIn(file: string, text = readFileSync(file, 'utf8')): Set<string> {
  const names = new Set<string>()
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && isEnv(node.expression) && ENV_PROPERTY.test(node.name.text)) {
      names.add(node.name.text)
    } else if (
      ts.isElementAccessExpression(node) &&
      isEnv(node.expression) &&
      ts.isStringLiteralLike(node.argumentExpression)
    ) {
      names.add(node.argumentExpression.text)
    } else if (ts.isCallExpression(node) && node.arguments.some(isEnv)) {
      // a helper given the environment and a name: num(env, 'PORT'), envValue(env, 'SYNTH_BACKEND_URL')
      for (const arg of node.arguments) {
        if (ts.isStringLiteralLike(arg) && ENV_PROPERTY.test(arg.text)) names.add(arg.text)
      }
    } else if (ts.isStringLiteralLike(node)) {
      if (OUR_NAME.test(node.text)) names.add(node.text)
      // code kept in a string (a script run with `node -e`) reads the environment too
      for (const m of node.text.matchAll(EMBEDDED_READ)) names.add((m[1] ?? m[2])!)
    }
    ts.forEachChild(node, visit)
  }
  visit(ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true))
  return names
}

/** name → the files (relative to `root`) that read it. */
export function envReaders(root: string): Map<string, string[]> {
  const readers = new Map<string, string[]>()
  for (const file of sourceFiles(root)) {
    for (const name of envNamesIn(file)) {
      readers.set(name, [...(readers.get(name) ?? []), relative(root, file)])
    }
  }
  return readers
}
