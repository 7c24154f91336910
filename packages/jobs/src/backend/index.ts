/**
 * `@taskapp/jobs/backend`: a local backend that implements Synth's job API and runs a real small
 * GEPA-style optimization against a task app, plus a deterministic OpenAI-compatible model.
 */
export { JobsError, JobsErrorCode } from '../errors'
export { createLocalBackend } from './local-backend'
export type { LocalBackend, LocalBackendOptions } from './local-backend'
export type { UpstreamOptions } from './upstream'
export { REFLECTION_MARKER, formatReflection, parseReflection } from './reflection-format'
export type { ReflectionExample, ParsedReflection } from './reflection-format'
export { EVENT_NAMES, TERMINAL_STATUSES } from './wire-shapes'
export type {
  BestCandidateWire,
  CancelReplyWire,
  CreateJobReplyWire,
  EventLevel,
  EventName,
  EventPageWire,
  JobEventWire,
  JobStatusWire,
  UsageWire,
} from './wire-shapes'
export { createDeterministicModel } from '../model/deterministic-model'
export type {
  DeterministicModel,
  DeterministicModelOptions,
  DeterministicModelRequest,
  DeterministicModelStats,
} from '../model/deterministic-model'
export type { ChatMessage } from '../model/answer'
export { applyRules, deriveRule, formatRule, parseRules } from '../model/rules'
export type { PromptRule, RuleExample } from '../model/rules'
