import { taskappProject } from '../../vitest.shared.ts'

export default taskappProject(import.meta.dirname)
