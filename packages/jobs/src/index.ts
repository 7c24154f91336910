/**
 * `@taskapp/jobs`: the client for Synth's prompt-optimization job API (`PromptLearningJob`).
 * The local backend lives under the `@taskapp/jobs/backend` subpath so the client stays light.
 */
export { JobsError, JobsErrorCode } from './errors'
export type { JobsErrorOptions } from './errors'
export { PromptLearningJob } from './client/prompt-learning-job'
export type {
  CandidateScore,
  EventsOptions,
  JobEvent,
  JobResult,
  JobSnapshot,
  PromptLearningJobOptions,
  ValidationScore,
  WaitOptions,
} from './client/types'
export { DEFAULT_WAIT_TIMEOUT_MS } from './client/wait'
export {
  FINAL_STATUSES,
  JOB_STATUSES,
  eventCategory,
  isFinalStatus,
  isSynthTunnelUrl,
  normalizeStatus,
  terminalStatusOf,
} from './wire'
export type { EventCategory, JobAlgorithm, JobKind, JobStatus, WireGeneration } from './wire'
