/**
 * `@taskapp/jobs`: the client for Synth's prompt-optimization job API (`PromptLearningJob`).
 * The local backend lives under the `@taskapp/jobs/backend` subpath so the client stays light.
 */
export { JobsError, JobsErrorCode } from './errors'
