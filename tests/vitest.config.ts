import { taskappProject } from '../vitest.shared'

const project = taskappProject(import.meta.dirname, { testTimeout: 60_000 })

// Vitest hands `ssr.resolve.conditions` to the worker as `node --conditions ...`. With `import`
// among them, Node's own `require()` inside CommonJS dependencies (Express 5's router ->
// is-promise) resolves ESM entries and breaks. Keep only the conditions safe for both loaders
// (same fix as packages/task-server; the shared config should get it too).
const conditions = ['@taskapp/source', 'node']
project.resolve = { ...project.resolve, conditions }
project.ssr = { ...project.ssr, resolve: { ...project.ssr?.resolve, conditions } }

export default project
