import { taskappProject } from '../../vitest.shared'

const project = taskappProject(import.meta.dirname)

// Vitest hands `ssr.resolve.conditions` to the worker as `node --conditions ...`. With `import`
// among them, Node's own `require()` inside CommonJS dependencies (Express 5's router ->
// is-promise) resolves ESM entries and breaks. Vite adds `import` / `require` per import kind by
// itself, so this package keeps only the conditions that are safe for both loaders.
const conditions = ['@taskapp/source', 'node']
project.resolve = { ...project.resolve, conditions }
project.ssr = { ...project.ssr, resolve: { ...project.ssr?.resolve, conditions } }

export default project
