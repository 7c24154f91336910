/**
 * `@taskapp/core`: what every taskapp package shares. Imports nothing of ours and has no
 * dependencies.
 */
export { TaskappError, isTaskappError, messageOf } from './errors'
export type { TaskappErrorOptions } from './errors'
