/** Shared building blocks for this package's tests (not exported from the package). */
import type { TaskAppConfig } from '../config'
import type { TaskAppLogger } from '../logger'

/** The API key the test apps accept. */
export const KEY = 'sk-env-test-0123456789'

/** Headers carrying {@link KEY}. */
export const AUTH = Object.freeze({ 'x-api-key': KEY })

/** One recorded log line. */
export interface LogLine {
  level: keyof TaskAppLogger
  obj: Record<string, unknown>
  msg: string | undefined
}

/** A logger that records every line. */
export function recordingLogger(): TaskAppLogger & { lines: LogLine[] } {
  const lines: LogLine[] = []
  const at = (level: keyof TaskAppLogger) => (obj: Record<string, unknown>, msg?: string) => {
    lines.push({ level, obj, msg })
  }
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

/** A valid config with a trivial handler; `overrides` win. */
export function testConfig(overrides: Partial<TaskAppConfig> = {}): TaskAppConfig {
  return {
    appId: 'banking77',
    name: 'Banking77',
    description: 'Classify a customer query into one of 77 intents.',
    apiKeys: [KEY],
    provideTasksetDescription: () => ({ splits: ['train', 'test'], size: 100 }),
    provideTaskInstances: (seeds) =>
      seeds.map((seed) => ({
        task: { id: 'banking77', name: 'Banking77' },
        dataset: { id: 'banking77', split: 'train' },
        task_metadata: { seed },
      })),
    rollout: (request) => ({
      trace_correlation_id: request.trace_correlation_id,
      reward_info: { outcome_reward: 1 },
    }),
    ...overrides,
  }
}

/** A minimal valid rollout request body; `overrides` are merged at the top level. */
export function rolloutBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    trace_correlation_id: 'trace-1',
    env: { env_name: 'banking77', seed: 3, config: {} },
    policy: { policy_name: 'p', config: { model: 'gpt-4o-mini' } },
    ...overrides,
  }
}
