/**
 * `@taskapp/jobs/backend`: a local backend that implements Synth's job API and runs a real small
 * GEPA-style optimization against a task app, plus a deterministic OpenAI-compatible model.
 */
export { JobsError, JobsErrorCode } from '../errors'
