import { taskappProject } from '../../vitest.shared'

export default taskappProject(import.meta.dirname)
