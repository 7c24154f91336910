/**
 * Every TaskServerError code, produced by a real scenario (the README Errors table lists the same
 * codes), plus the config validation table.
 */
import { describe, expect, onTestFinished, test } from 'vitest'
import { z } from 'zod'
import {
  createMemoryJobStore,
  createMlflowTracker,
  createRedisJobStore,
  createTaskApp,
  isTaskServerError,
  parseTrustedContainerKeys,
  TaskServerError,
} from './index'
import type { RolloutCompleteEvent, TaskAppConfig, TaskServerErrorCode } from './index'
import { deferred, recordingLogger, startRedisServer } from '@taskapp/test-utils'
import { loadIoredis } from './redis/load'
import { AUTH, inject, rolloutBody, startFakeMlflow, testConfig } from './test-helpers'

/** Runs one rollout through an app and returns the error its onRolloutComplete hook saw. */
async function hookErrorOf(
  overrides: Partial<TaskAppConfig>,
  body = rolloutBody(),
  after?: (app: ReturnType<typeof createTaskApp>) => Promise<void>,
) {
  const events: RolloutCompleteEvent[] = []
  const app = createTaskApp(testConfig({ ...overrides, onRolloutComplete: (e) => void events.push(e) }))
  onTestFinished(() => app.lifecycle.close({ graceMs: 200 }).catch(() => {}))
  const pending = inject(app, { method: 'POST', url: '/rollout', headers: AUTH, body })
  if (after) await after(app)
  await pending
  await expect.poll(() => events.length, { timeout: 10_000 }).toBeGreaterThan(0)
  return events[0]?.error
}

const scenarios: Record<TaskServerErrorCode, () => Promise<unknown>> = {
  TASKAPP_ERR_INVALID_CONFIG: async () => {
    try {
      createTaskApp({ ...testConfig(), appId: '' })
    } catch (err) {
      return err
    }
  },
  TASKAPP_ERR_STARTUP_FAILED: async () => {
    const app = createTaskApp(testConfig({ startupHooks: [() => Promise.reject(new Error('x'))] }))
    onTestFinished(() => app.lifecycle.close())
    return app.lifecycle.ready().catch((e: unknown) => e)
  },
  TASKAPP_ERR_SHUTDOWN_FAILED: async () => {
    const app = createTaskApp(testConfig({ shutdownHooks: [() => Promise.reject(new Error('x'))] }))
    return app.lifecycle.close().catch((e: unknown) => e)
  },
  TASKAPP_ERR_ROLLOUT_FAILED: () =>
    hookErrorOf({
      rollout: () => {
        throw new Error('x')
      },
    }),
  TASKAPP_ERR_INVALID_ROLLOUT_RESPONSE: () => hookErrorOf({ rollout: () => ({}) as never }),
  TASKAPP_ERR_ROLLOUT_TIMEOUT: () =>
    hookErrorOf(
      {
        rollout: (_r, ctx) =>
          new Promise((_res, rej) => ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason))),
      },
      rolloutBody({ safety: { max_time_s: 0.02 } }),
    ),
  TASKAPP_ERR_ROLLOUT_CANCELLED: () => {
    const started = deferred<void>()
    return hookErrorOf(
      {
        rollout: (_r, ctx) => {
          started.resolve()
          return new Promise((_res, rej) =>
            ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason)),
          )
        },
      },
      rolloutBody(),
      async (app) => {
        await started.promise
        await app.lifecycle.close()
      },
    )
  },
  TASKAPP_ERR_JOB_STORE_FULL: async () => {
    const store = createMemoryJobStore({ maxJobs: 1 })
    store.put({ id: 'a', status: 'running', traceCorrelationId: 't', createdAt: 0 })
    try {
      store.put({ id: 'b', status: 'running', traceCorrelationId: 't', createdAt: 0 })
    } catch (err) {
      return err
    } finally {
      await store.close()
    }
  },
  TASKAPP_ERR_JOB_STORE_UNAVAILABLE: () =>
    createRedisJobStore({ redis: 'unix:///nonexistent-taskapp-dir/redis.sock' }).catch((e: unknown) => e),
  TASKAPP_ERR_JOB_STORE_CLOSED: async () => {
    await using redis = await startRedisServer()
    const store = await createRedisJobStore({ redis: redis.url, prefix: redis.prefix() })
    await store.close()
    return store.get('x').catch((e: unknown) => e)
  },
  TASKAPP_ERR_JOB_RECORD_CORRUPT: async () => {
    await using redis = await startRedisServer()
    const logger = recordingLogger()
    await using store = await createRedisJobStore({ redis: redis.url, prefix: redis.prefix(), logger })
    await redis.client().hset(`${store.prefix}job:x`, 'job', 'not json')
    await store.get('x')
    return logger.records[0]?.obj.err
  },
  TASKAPP_ERR_IOREDIS_MISSING: () =>
    // A double: ioredis is installed here, so the loader fails the way Node does without it.
    loadIoredis(() =>
      Promise.reject(
        Object.assign(new Error("Cannot find package 'ioredis'"), { code: 'ERR_MODULE_NOT_FOUND' }),
      ),
    ).catch((e: unknown) => e),
  TASKAPP_ERR_INVALID_CONTAINER_KEY: async () => {
    try {
      parseTrustedContainerKeys('k1:not-a-32-byte-key')
    } catch (err) {
      return err
    }
  },
  TASKAPP_ERR_MLFLOW_REQUEST_FAILED: async () => {
    await using mlflow = await startFakeMlflow({ failWith: 500 })
    const tracker = createMlflowTracker({ trackingUri: mlflow.url, experiment: 'e' })
    return tracker
      .logRollout({
        request: {
          trace_correlation_id: 't',
          env: { config: {} },
          policy: { config: {}, output_mode: 'text' },
          on_done: 'reset',
          safety: { max_time_s: 1 },
        },
        requestId: 'r',
        durationMs: 1,
      })
      .catch((e: unknown) => e)
  },
}

describe('TaskServerError codes', () => {
  test.each(Object.entries(scenarios))('%s', async (code, produce) => {
    const err = await produce()
    expect(err).toBeInstanceOf(TaskServerError)
    expect(err).toBeInstanceOf(Error)
    expect(isTaskServerError(err, code as TaskServerErrorCode)).toBe(true)
    expect((err as TaskServerError).name).toBe('TaskServerError')
    expect((err as TaskServerError).message.length).toBeGreaterThan(20)
  })
})

describe('createTaskApp config validation (TASKAPP_ERR_INVALID_CONFIG)', () => {
  const base = testConfig()
  test.each([
    ['appId', { appId: '' }],
    ['name', { name: 3 }],
    ['description', { description: undefined }],
    ['rollout', { rollout: 'fn' }],
    ['provideTaskInstances', { provideTaskInstances: undefined }],
    ['provideTasksetDescription', { provideTasksetDescription: {} }],
    ['apiKeys', { apiKeys: ['ok', ''] }],
    ['apiKeys', { apiKeys: 'single-key' }],
    ['requireApiKey', { requireApiKey: 'yes' }],
    ['authFailureStatus', { authFailureStatus: 403 }],
    ['corsOrigins', { corsOrigins: '*' }],
    ['startupHooks', { startupHooks: [() => {}, 'x'] }],
    ['shutdownHooks', { shutdownHooks: () => {} }],
    ['syncTimeoutMs', { syncTimeoutMs: 0 }],
    ['limits.bodyLimit', { limits: { bodyLimit: 'huge' } }],
    ['limits.bodyLimit', { limits: { bodyLimit: -5 } }],
    ['limits.requestTimeoutMs', { limits: { requestTimeoutMs: Number.NaN } }],
    ['envConfigSchema', { envConfigSchema: { parse: () => 1 } }],
    ['jobStore', { jobStore: {} }],
    ['logger', { logger: { info: () => {} } }],
    ['onRolloutComplete', { onRolloutComplete: true }],
    ['exposeDebugEnv', { exposeDebugEnv: 1 }],
    ['proxy.openaiUrl', { proxy: { openaiUrl: 'not a url' } }],
    ['baseTaskInfo', { baseTaskInfo: { task: { id: 'x' } } }],
  ])('%s: %o', (field, patch) => {
    let err: unknown
    try {
      createTaskApp({ ...base, ...patch } as unknown as TaskAppConfig)
    } catch (e) {
      err = e
    }
    expect(isTaskServerError(err, 'TASKAPP_ERR_INVALID_CONFIG')).toBe(true)
    expect((err as Error).message).toContain(field)
  })

  test('reports every problem at once', () => {
    expect(() => createTaskApp({ ...base, appId: '', name: '', syncTimeoutMs: -1 })).toThrow(
      /appId.*name.*syncTimeoutMs/,
    )
  })

  test('a non-object config', () => {
    expect(() => createTaskApp(null as unknown as TaskAppConfig)).toThrow(
      expect.objectContaining({ code: 'TASKAPP_ERR_INVALID_CONFIG' }),
    )
  })

  test('valid optional fields pass', () => {
    const app = createTaskApp({
      ...base,
      limits: { bodyLimit: '2mb', requestTimeoutMs: 1000 },
      envConfigSchema: z.object({}),
      corsOrigins: [],
      proxy: { openaiUrl: 'http://127.0.0.1:1/v1/chat/completions' },
    })
    onTestFinished(() => app.lifecycle.close())
    expect(app.lifecycle.state).toBe('ready')
  })
})
