/**
 * `createTaskApp(config)`: the task-app HTTP service as an Express 5 app, wire-compatible with
 * synth-ai's `create_task_app(TaskAppConfig)`. This file only wires the parts together:
 * `lifecycle`, `rollout/*` (runs, execution, jobs), `middleware/*` and `routes/*`.
 */
import express, { type Express, type RequestHandler } from 'express'
import { createKeySource, resolveContainerAuth } from './auth'
import { assertValidConfig, resolveCallerLimits } from './config-check'
import type { TaskAppConfig } from './config'
import { createCorsMiddleware } from './cors'
import { createMemoryJobStore } from './job-store'
import { createLifecycle, type TaskAppLifecycle } from './lifecycle'
import { silentLogger } from './logger'
import { createAuth } from './middleware/auth'
import { compose } from './middleware/compose'
import { createErrorHandler, notFound } from './middleware/errors'
import { refuseWhileClosing, requireReady } from './middleware/ready'
import { requestId } from './middleware/request-id'
import { requestLog } from './middleware/request-log'
import { createExecutor } from './rollout/execute'
import { createJobs } from './rollout/jobs'
import { createCompletionNotifier } from './rollout/notify'
import { abortRun, createRunRegistry, isSettled, whenRun } from './rollout/run'
import { createRolloutStats, DEFAULT_STATS_LOG_INTERVAL_MS, type TaskAppStats } from './rollout/stats'
import { debugEnvRoutes } from './routes/debug-env'
import { doneRoutes } from './routes/done'
import { healthRoutes } from './routes/health'
import { infoRoutes } from './routes/info'
import { proxyRoutes } from './routes/proxy'
import { rolloutRoute } from './routes/rollout'
import { rolloutsRoutes } from './routes/rollouts'

/** The Express app `createTaskApp` returns, with its {@link TaskAppLifecycle} and its running count. */
export type TaskApp = Express & {
  readonly lifecycle: TaskAppLifecycle
  /** The rollouts finished so far: how many, how many failed or were cancelled, the mean reward. */
  stats(): TaskAppStats
}

/**
 * Builds the task-app HTTP service from a {@link TaskAppConfig}: an Express 5 app serving `/`,
 * `/health`, `/info`, `/task_info`, `/rollout` (sync and async), `/rollouts/:id`, `/done`, and
 * optionally `/debug/env` and `/proxy/v1/chat/completions`. Validates the config synchronously
 * (throws `TASKAPP_ERR_INVALID_CONFIG`) and starts the startup hooks in the background.
 *
 * @example
 * ```ts
 * import { createTaskApp } from '@taskapp/task-server'
 *
 * const app = createTaskApp({
 *   appId: 'echo',
 *   name: 'Echo',
 *   description: 'Rewards every rollout with 1',
 *   apiKeys: ['sk-env-123'],
 *   provideTasksetDescription: () => ({ splits: ['train'] }),
 *   provideTaskInstances: (seeds) => seeds.map((seed) => ({ task: { id: 'echo', name: 'Echo' }, task_metadata: { seed } })),
 *   rollout: (request) => ({ trace_correlation_id: request.trace_correlation_id, reward_info: { outcome_reward: 1 } }),
 * })
 * await app.lifecycle.ready()
 * const server = app.listen(8114, '127.0.0.1')
 * // later: server.close(); await app.lifecycle.close()
 * ```
 */
export function createTaskApp<TEnvConfig = Record<string, unknown>, TPolicyConfig = Record<string, unknown>>(
  config: TaskAppConfig<TEnvConfig, TPolicyConfig>,
): TaskApp {
  assertValidConfig(config)
  const cfg = config as unknown as TaskAppConfig
  const logger = cfg.logger ?? silentLogger
  const keys = createKeySource(cfg.apiKeys)
  const requireKey = cfg.requireApiKey ?? true
  // Read once: trusted keys, mode and issuer from the config, else SYNTH_CONTAINER_* (undefined: API keys only).
  const container = resolveContainerAuth(cfg.containerAuth)
  // A store passed in belongs to the caller (it may be shared); only the default one is closed here.
  const ownsJobStore = cfg.jobStore === undefined
  const jobStore = cfg.jobStore ?? createMemoryJobStore()
  const limits = resolveCallerLimits(cfg.limits)

  const runs = createRunRegistry()
  const stats = createRolloutStats(logger, cfg.statsLogIntervalMs ?? DEFAULT_STATS_LOG_INTERVAL_MS)
  const notifier = createCompletionNotifier(cfg.onRolloutComplete, logger)
  const jobs = createJobs({ jobStore, runs, logger, maxJobsPerOwner: limits.maxJobsPerOwner })
  const execute = createExecutor({
    rollout: cfg.rollout.bind(cfg),
    logger,
    runs,
    stats,
    onComplete: cfg.onRolloutComplete === undefined ? undefined : (event) => notifier.notify(event),
  })
  const {
    lifecycle,
    signal: closing,
    state,
  } = createLifecycle({
    startupHooks: cfg.startupHooks ?? [],
    shutdownHooks: cfg.shutdownHooks ?? [],
    logger,
    drain(reason) {
      const inFlight = runs.inFlight()
      for (const run of inFlight) abortRun(run, reason)
      return Promise.all([
        ...inFlight.map((run) => whenRun(run, () => isSettled(run))),
        ...notifier.pending(),
      ])
    },
    release: () => {
      stats.close()
      return ownsJobStore ? jobStore.close?.() : undefined
    },
  })

  // ---- middleware: every route gets `everyRoute`; the route modules add their own gates ----
  const everyRoute: RequestHandler[] = [requestId, requestLog(logger), refuseWhileClosing(state)]
  const authOptions = {
    keys,
    required: requireKey,
    failureStatus: cfg.authFailureStatus ?? 400,
    logger,
    container,
  }
  // Without container settings these are all the same synchronous API-key check.
  const auth = createAuth(authOptions, null)
  const rolloutAuth = createAuth(authOptions, 'rollout')
  const taskInfoAuth = createAuth(authOptions, 'task_info')
  // With trusted keys `/health` is open (as in synth-ai's container); otherwise it needs a key.
  const healthAuth: RequestHandler = container === undefined ? auth : (_req, _res, next) => next()
  const ready = requireReady(state)
  const jsonBody = express.json({ limit: cfg.limits?.bodyLimit ?? '10mb', type: () => true, strict: true })
  const rollout = rolloutRoute({
    config: cfg,
    logger,
    runs,
    jobs,
    execute,
    maxRolloutTimeS: limits.maxRolloutTimeS,
    maxJobsPerOwner: limits.maxJobsPerOwner,
    gates: [rolloutAuth, ready, jsonBody],
  })

  const app = express() as unknown as TaskApp
  app.disable('x-powered-by')
  app.set('etag', false)
  Object.defineProperty(app, 'lifecycle', { value: lifecycle, enumerable: true })
  Object.defineProperty(app, 'stats', { value: () => stats.snapshot(), enumerable: true })

  if (cfg.corsOrigins !== undefined) app.use(createCorsMiddleware(cfg.corsOrigins))
  // The fast path: POST /rollout is most of the traffic, so it is matched first and served from
  // one layer instead of a walk through the routers. It is built from the very middleware that
  // every route gets (everyRoute) followed by the rollout route's own chain, so the two cannot
  // drift apart. rollout.router registers that same chain: it gives /rollout its 405 and would
  // serve POST /rollout if the fast path were dropped.
  app.post('/rollout', compose([...everyRoute, ...rollout.handlers]))
  app.use(everyRoute)
  app.use(
    healthRoutes({
      appId: cfg.appId,
      keys,
      requireKey,
      auth: healthAuth,
      open: container !== undefined,
      state,
    }),
  )
  app.use(
    infoRoutes({
      config: cfg,
      logger,
      gates: [taskInfoAuth, ready],
      closing,
      maxSeeds: limits.maxTaskInfoSeeds,
    }),
  )
  app.use(rollout.router)
  app.use(rolloutsRoutes(jobStore, jobs, rolloutAuth, logger))
  app.use(doneRoutes(cfg.appId, auth))
  if (cfg.exposeDebugEnv === true) app.use(debugEnvRoutes(auth))
  if (cfg.proxy !== undefined && cfg.proxy.enableOpenai !== false) {
    app.use(proxyRoutes(cfg.proxy, logger, [auth, ready, jsonBody]))
  }
  app.use(notFound)
  app.use(createErrorHandler(logger))
  return app
}
