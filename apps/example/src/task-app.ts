/**
 * The example task app: route customer-support tickets to one of five queues.
 *
 * This file is a task-app file: `taskapp serve apps/example/src/task-app.ts` (or
 * `InProcessTaskApp.start({ taskAppPath })`) picks up its `buildConfig` export.
 */
import type { TaskAppConfig, TaskInfo } from '@taskapp/sdk'
import { z } from 'zod'
import { LABELS, SPLITS, loadDataset, type Dataset, type Split } from './dataset'
import { CHAT_SYSTEM_PROMPT, type PolicySelectOptions } from './policies'
import { runClassificationRollout } from './rollout'

/** Id of the example task app (`GET /` answers `{ service: APP_ID }`). */
export const APP_ID = 'ticket-routing'

/** Options of {@link buildConfig}. */
export interface BuildConfigOptions extends PolicySelectOptions {
  /** The data set. @default loadDataset() (the committed data/tickets.jsonl) */
  dataset?: Dataset
  /** Keys the app accepts; omitted, InProcessTaskApp / ENVIRONMENT_API_KEY decide. @default undefined */
  apiKeys?: readonly string[]
  /** A pino-compatible logger for the task server. @default silent */
  logger?: TaskAppConfig['logger']
}

const envConfigSchema = z.looseObject({
  split: z.enum(SPLITS).default('train'),
})

const policyConfigSchema = z.looseObject({
  inference_url: z.url({ protocol: /^https?$/ }).optional(),
  model: z.string().min(1).optional(),
  api_key: z.string().min(1).optional(),
  temperature: z.number().min(0).max(2).optional(),
})

/** The task info every task instance shares: the task, the dataset splits and the label set. */
function baseTaskInfoOf(dataset: Dataset, sizes: Record<Split, number>): TaskInfo {
  return {
    task: {
      id: APP_ID,
      name: 'Support ticket routing',
      description: `Route a customer-support ticket to one queue: ${LABELS.join(', ')}.`,
      version: '1.0.0',
    },
    dataset: {
      id: 'tickets',
      name: 'Synthetic support tickets',
      version: '1',
      splits: [...SPLITS],
      default_split: 'train',
      description: `${dataset.tickets.length} labelled tickets (train ${sizes.train}, validation ${sizes.validation}, test ${sizes.test}).`,
    },
    inference: {},
    limits: { max_turns: 1, max_response_tokens: 8, timeout_seconds: 30 },
    environment: 'ticket-routing',
    task_metadata: { labels: [...LABELS], system_prompt: CHAT_SYSTEM_PROMPT },
  }
}

/** The rollout of the app: runs the requested policy on the ticket `env.seed` selects. */
function rolloutOf(dataset: Dataset, options: BuildConfigOptions): TaskAppConfig['rollout'] {
  return async (request, ctx) => {
    const policySpec = {
      ...(request.policy.policy_name !== undefined && { policy_name: request.policy.policy_name }),
      config: request.policy.config,
    }
    return runClassificationRollout(
      {
        trace_correlation_id: request.trace_correlation_id,
        env: { seed: request.env.seed ?? 0, config: request.env.config },
        policy: policySpec,
      },
      {
        dataset,
        signal: ctx.signal,
        ...(options.chatApiKey !== undefined && { chatApiKey: options.chatApiKey }),
        ...(options.fetch !== undefined && { fetch: options.fetch }),
      },
    )
  }
}

/**
 * Builds the example's `TaskAppConfig`: task info with the label set, the dataset splits, and a
 * rollout that runs the requested policy on the ticket `env.seed` selects in `env.config.split`
 * and scores it by exact match.
 *
 * @example
 * ```ts
 * import { InProcessTaskApp } from '@taskapp/sdk'
 * import { buildConfig } from './task-app'
 *
 * await using app = await InProcessTaskApp.start({ configFactory: buildConfig, tunnel: { mode: 'local' }, port: 0 })
 * ```
 */
export function buildConfig(options: BuildConfigOptions = {}): TaskAppConfig {
  const dataset = options.dataset ?? loadDataset()
  const sizes = dataset.sizes()
  const baseTaskInfo = baseTaskInfoOf(dataset, sizes)
  // Typed as the plain TaskAppConfig (what InProcessTaskApp and createTaskApp take); the schemas
  // still validate env.config / policy.config before the rollout runs (422 otherwise).
  return {
    appId: APP_ID,
    name: 'Support ticket routing (taskapp example)',
    description: 'Classify a customer-support ticket into billing, shipping, technical, account or feedback.',
    baseTaskInfo,
    envConfigSchema,
    policyConfigSchema,
    rubrics: {
      outcome: {
        criteria: [
          {
            id: 'exact_label',
            weight: 1,
            description: 'The predicted queue equals the gold label (reward 1, else 0).',
          },
        ],
      },
    },
    ...(options.apiKeys !== undefined && { apiKeys: options.apiKeys }),
    ...(options.logger !== undefined && { logger: options.logger }),
    provideTasksetDescription: () => ({
      id: APP_ID,
      name: 'Support ticket routing',
      labels: [...LABELS],
      splits: [...SPLITS],
      sizes,
      seed_rule: 'env.seed selects ticket (seed mod size) of env.config.split',
    }),
    provideTaskInstances: (seeds) =>
      seeds.map((seed) => {
        const ticket = dataset.exampleForSeed(seed, 'train')
        return {
          ...baseTaskInfo,
          task_metadata: { ...baseTaskInfo.task_metadata, seed, split: 'train', example_id: ticket.id },
        }
      }),
    rollout: rolloutOf(dataset, options),
  }
}
