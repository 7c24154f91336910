/**
 * `@taskapp/sdk`: one import for everything. Re-exports the public API of every taskapp
 * package by name, builds any tunnel by mode ({@link createTunnel}), and ships the `taskapp` CLI.
 *
 * The shared contracts (`TunnelBackend`, `OpenTunnel`, `TunnelTarget`, `Logger`, `redact`, the
 * `TaskappError` base) are declared once, in `@taskapp/core`, and re-exported from here.
 *
 * @example
 * ```ts
 * import { InProcessTaskApp } from '@taskapp/sdk'
 *
 * await using app = await InProcessTaskApp.start({ configFactory: buildConfig, port: 8114 })
 * console.log(app.url)
 * ```
 * @packageDocumentation
 */

// ---- @taskapp/in-process: InProcessTaskApp and the TunnelBackend contract
export {
  InProcessTaskApp,
  InProcessError,
  TUNNEL_MODES,
  TUNNEL_SPEC_KEYS,
  OPTION_KEYS,
  FLAT_TUNNEL_OPTIONS_WARNING,
  defaultLogger,
} from '@taskapp/in-process'
export type {
  InProcessTaskAppState,
  TunnelSpec,
  CloudflaredInstallSpec,
  InProcessErrorDetails,
  InProcessTaskAppEvents,
  TunnelLostEvent,
  StartStep,
  AppLifecycle,
  AppLike,
  InProcessTaskAppOptions,
  PortConflictPolicy,
  RequestListener,
  TaskAppState,
  TunnelMode,
} from '@taskapp/in-process'

// ---- @taskapp/core: the error base, the logger, the tunnel contract and the Synth backend resolver
export {
  TaskappError,
  isTaskappError,
  messageOf,
  CoreError,
  CoreErrorCode,
  redact,
  silentLogger,
  levelEnabled,
  safeLog,
  resolveSynthBackendUrl,
  SYNTH_BACKEND_ENV_NAMES,
  SYNTH_DEV_BACKEND_URL,
  SYNTH_LOCAL_BACKEND_URL,
  SYNTH_PROD_BACKEND_URL,
  errorFields,
  errorStack,
  environmentApiKey,
  environmentApiKeys,
  relayApiKeyFromEnv,
  ENVIRONMENT_API_KEY_ENV_NAMES,
  ENVIRONMENT_API_KEY_ALIASES_ENV,
  RELAY_API_KEY_ENV_NAMES,
  RELAY_URL_ENV,
} from '@taskapp/core'
export type {
  TaskappErrorOptions,
  Logger,
  LogLevel,
  OpenTunnel,
  TunnelBackend,
  TunnelTarget,
  ResolveSynthBackendOptions,
  ResolvedSynthBackend,
  SynthBackendSource,
  Env,
} from '@taskapp/core'

// ---- @taskapp/task-server: the task-app HTTP service
export {
  createTaskApp,
  defineTaskAppConfig,
  TaskServerError,
  isTaskServerError,
  createMemoryJobStore,
  createRedisJobStore,
  createMlflowTracker,
  rolloutRequestSchema,
  rolloutResponseSchema,
  taskInfoSchema,
  CONTAINER_AUTH_HEADER,
  CONTAINER_TOKEN_SCOPES,
  DEFAULT_CONTAINER_TOKEN_AUDIENCE,
  DEFAULT_CONTAINER_TOKEN_ISSUER,
  parseTrustedContainerKeys,
  verifyContainerToken,
  signContainerToken,
  generateContainerKeyPair,
} from '@taskapp/task-server'
export type {
  TaskApp,
  TaskAppLifecycle,
  TaskAppStats,
  TaskServerState,
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
  JobStore,
  MemoryJobStore,
  MemoryJobStoreOptions,
  RedisJobStore,
  RedisJobStoreOptions,
  RedisClientLike,
  RolloutJob,
  RolloutJobStatus,
  MlflowTracker,
  MlflowTrackerOptions,
  ProxyConfig,
  TaskAppLogger,
  ErrorEnvelope,
  WireErrorCode,
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
  ContainerTokenClaims,
  ContainerTokenScope,
  ContainerPublicKey,
  TrustedContainerKeyInput,
  VerifyContainerTokenOptions,
  ContainerTokenVerification,
  ContainerAuthFailureReason,
  SignContainerTokenOptions,
  ContainerKeyPair,
} from '@taskapp/task-server'

// ---- @taskapp/port-manager
export {
  PortManagerError,
  isPortAvailable,
  findAvailablePort,
  listen,
  findPortOwner,
  killPortOwner,
  isLoopbackHost,
  MIN_PORT,
  MAX_PORT,
} from '@taskapp/port-manager'
export type {
  PortOwner,
  PortConflictEvent,
  PortManagerErrorDetails,
  HostOptions,
  FindAvailablePortOptions,
  ListenOptions,
  OnConflict,
  KillPortOwnerOptions,
} from '@taskapp/port-manager'

// ---- @taskapp/health-checker
export {
  HealthCheckError,
  defaultIsHealthy,
  isUnauthorized,
  waitForHealthy,
  checkHealth,
  watchHealth,
} from '@taskapp/health-checker'
export type {
  LastProbe,
  HealthPredicate,
  HealthResponse,
  ProbeOptions,
  ProbeResult,
  WaitForHealthyOptions,
  WaitForHealthyResult,
  CheckHealthOptions,
  HealthEvent,
  HealthWatcher,
  WatchHealthOptions,
} from '@taskapp/health-checker'

// ---- @taskapp/tunnel-synth: the relay tunnel agent, and the self-hostable relay server
export {
  synthTunnel,
  localApiKeysFromEnv,
  SynthTunnelError,
  SynthTunnelErrorCode,
  AGENT_DROPPED_REQUEST_HEADERS,
  RELAY_DROPPED_CALLER_HEADERS,
  RELAY_MARKER_HEADER,
  RELAY_MARKER_VALUE,
  HOP_BY_HOP_HEADERS,
  MAX_BODY_CHUNK_BYTES,
  WORKER_TOKEN_HEADER,
  parseAgentFrame,
  parseRelayFrame,
} from '@taskapp/tunnel-synth'
export type {
  SynthTunnelOptions,
  SynthOpenTunnel,
  SynthTunnelBackend,
  SynthTunnelEvent,
  SynthTunnelStats,
  AgentFrame,
  RelayFrame,
  HeaderPairs,
} from '@taskapp/tunnel-synth'
export {
  createRelayServer,
  createMemoryLeaseStore,
  createFileLeaseStore,
  createRedisLeaseStore,
  relayOptionsFromEnv,
} from '@taskapp/tunnel-synth/relay'
export type {
  RelayServer,
  RelayServerOptions,
  RelayStats,
  RelayRejections,
  LeaseStore,
  RelayLease,
  FileLeaseStoreOptions,
  RelayAdminOptions,
  RelayClusterProbe,
  RedisLeaseStore,
  RedisLeaseStoreOptions,
  RelayClusterOptions,
  RelayClusterHandle,
  RelayClusterStats,
} from '@taskapp/tunnel-synth/relay'

// ---- @taskapp/tunnel-cloudflare: quick and named Cloudflare tunnels
export {
  cloudflareQuickTunnel,
  cloudflareNamedTunnel,
  verifyTunnel,
  installCloudflared,
  cloudflaredAssetName,
  parseChecksums,
  DEFAULT_RELEASES_URL,
  DEFAULT_RELEASES_API_URL,
  findCloudflared,
  defaultInstallDir,
  killAllTrackedChildren,
  trackedChildCount,
  parseCloudflaredLine,
  CloudflareTunnelError,
} from '@taskapp/tunnel-cloudflare'
export type {
  CloudflareTunnelOptions,
  CloudflareNamedTunnelOptions,
  CloudflareTunnel,
  VerifyTunnelOptions,
  VerifyTunnelResult,
  InstallCloudflaredOptions,
  InstalledCloudflared,
  FindCloudflaredOptions,
  FoundCloudflared,
  ParsedLine,
  CloudflareTunnelErrorDetails,
  TunnelLogger,
} from '@taskapp/tunnel-cloudflare'

// ---- @taskapp/jobs: prompt-optimization jobs (the client), and the local backend
export {
  JobsError,
  JobsErrorCode,
  PromptLearningJob,
  DEFAULT_WAIT_TIMEOUT_MS,
  FINAL_STATUSES,
  JOB_STATUSES,
  eventCategory,
  isFinalStatus,
  isSynthTunnelUrl,
  normalizeStatus,
  terminalStatusOf,
} from '@taskapp/jobs'
export type {
  JobsErrorOptions,
  CandidateScore,
  EventsOptions,
  JobEvent,
  JobResult,
  JobSnapshot,
  PromptLearningJobOptions,
  ValidationScore,
  WaitOptions,
  EventCategory,
  JobAlgorithm,
  JobKind,
  JobStatus,
  WireGeneration,
} from '@taskapp/jobs'
export {
  createLocalBackend,
  createDeterministicModel,
  REFLECTION_MARKER,
  formatReflection,
  parseReflection,
  EVENT_NAMES,
  TERMINAL_STATUSES,
  applyRules,
  deriveRule,
  formatRule,
  parseRules,
} from '@taskapp/jobs/backend'
export type {
  LocalBackend,
  LocalBackendOptions,
  UpstreamOptions,
  ReflectionExample,
  ParsedReflection,
  BestCandidateWire,
  CancelReplyWire,
  CreateJobReplyWire,
  EventLevel,
  EventName,
  EventPageWire,
  JobEventWire,
  JobStatusWire,
  UsageWire,
  DeterministicModel,
  DeterministicModelOptions,
  DeterministicModelRequest,
  DeterministicModelStats,
  ChatMessage,
  PromptRule,
  RuleExample,
} from '@taskapp/jobs/backend'

// ---- @taskapp/sdk itself
export { createTunnel, TUNNEL_BACKEND_MODES } from './tunnels'
export type { TunnelBackendSpec } from './tunnels'
export { SdkError, SdkErrorCode } from './errors'
export { runInProcessJob } from './run-in-process-job'
export type {
  RunInProcessJobOptions,
  InProcessJobUpdate,
  InProcessJobResult,
  TaskAppHealth,
} from './run-job-options'
export { JobProgressTracker } from './job-progress'
export type { JobProgress } from './job-progress'
export { InProcessErrorCode } from '@taskapp/in-process'
export { TaskServerErrorCode } from '@taskapp/task-server'
export { PortManagerErrorCode } from '@taskapp/port-manager'
export { HealthCheckErrorCode } from '@taskapp/health-checker'
export { CloudflareTunnelErrorCode } from '@taskapp/tunnel-cloudflare'
