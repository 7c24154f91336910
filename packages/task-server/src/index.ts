export { createTaskApp } from './create-task-app'
export type { TaskApp } from './create-task-app'
export type { TaskAppLifecycle, TaskServerState, TaskAppState } from './lifecycle'
export type { TaskAppStats } from './rollout/stats'
export { defineTaskAppConfig } from './config'
export type {
  TaskAppConfig,
  ContainerAuthConfig,
  ContainerAuthMode,
  TaskAppLimits,
  RolloutRequest,
  RolloutContext,
  RolloutCompleteEvent,
  RolloutCompleteHook,
  LifecycleHook,
  LifecycleHookContext,
  RubricBundle,
} from './config'
export { TaskServerError, TaskServerErrorCode, isTaskServerError } from './errors'
export { createMemoryJobStore } from './job-store'
export type {
  JobStore,
  MemoryJobStore,
  MemoryJobStoreOptions,
  RolloutJob,
  RolloutJobStatus,
} from './job-store'
export { createRedisJobStore } from './job-store-redis'
export type { RedisJobStore, RedisJobStoreOptions, RedisClientLike } from './job-store-redis'
export { createMlflowTracker } from './mlflow-tracker'
export type { MlflowTracker, MlflowTrackerOptions } from './mlflow-tracker'
export type { ProxyConfig } from './proxy'
export type { TaskAppLogger } from './logger'
export type { ErrorEnvelope, WireErrorCode } from './http-errors'
export { rolloutRequestSchema, rolloutResponseSchema, taskInfoSchema } from './schemas'
export {
  CONTAINER_AUTH_HEADER,
  CONTAINER_TOKEN_SCOPES,
  DEFAULT_CONTAINER_TOKEN_AUDIENCE,
  DEFAULT_CONTAINER_TOKEN_ISSUER,
} from './container-auth/claims'
export type { ContainerTokenClaims, ContainerTokenScope } from './container-auth/claims'
export { parseTrustedContainerKeys } from './container-auth/keys'
export type { ContainerPublicKey, TrustedContainerKeyInput } from './container-auth/keys'
export { verifyContainerToken } from './container-auth/verify'
export type {
  VerifyContainerTokenOptions,
  ContainerTokenVerification,
  ContainerAuthFailureReason,
} from './container-auth/verify'
export { signContainerToken, generateContainerKeyPair } from './container-auth/sign'
export type { SignContainerTokenOptions, ContainerKeyPair } from './container-auth/sign'
export type {
  TaskInfo,
  TaskInfoOutput,
  TaskDescriptor,
  DatasetInfo,
  InferenceInfo,
  LimitsInfo,
  RewardInfo,
  RolloutRequestInput,
  RolloutResponse,
  RolloutResponseOutput,
  ValidationIssue,
} from './schemas'
