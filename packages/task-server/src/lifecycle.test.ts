import { describe, expect, onTestFinished, test } from 'vitest'
import { createMemoryJobStore, createTaskApp, TaskServerError } from './index'
import type { LifecycleHookContext, RolloutContext, TaskAppConfig } from './index'
import { deferred } from '@taskapp/test-utils'
import { AUTH, inject, rolloutBody, testConfig } from './test-helpers'

function makeApp(overrides: Partial<TaskAppConfig> = {}) {
  const app = createTaskApp(testConfig(overrides))
  onTestFinished(() => app.lifecycle.close({ graceMs: 500 }).catch(() => {}))
  return app
}

/**
 * An app whose async rollout has started and never settles (it ignores its signal), with a
 * shutdown hook that records that it ran.
 */
async function appWithStuckRollout() {
  const never = deferred<void>()
  const started = deferred<void>()
  onTestFinished(() => never.resolve())
  const hookRan: boolean[] = []
  const app = makeApp({
    rollout: async () => {
      started.resolve()
      await never.promise
      return { trace_correlation_id: 'x', reward_info: { outcome_reward: 0 } }
    },
    shutdownHooks: [() => void hookRan.push(true)],
  })
  await inject(app, { method: 'POST', url: '/rollout?mode=async', headers: AUTH, body: rolloutBody() })
  await started.promise
  return { app, hookRan }
}

describe('startup', () => {
  test('/health is 503 until the startup hooks finish, then 200; other routes wait too', async () => {
    const hookGate = deferred<void>()
    const calls: string[] = []
    const app = makeApp({
      startupHooks: [
        async () => {
          calls.push('first')
          await hookGate.promise
        },
        () => {
          calls.push('second')
        },
      ],
    })
    expect(calls).toEqual(['first']) // started right away, in order
    expect(app.lifecycle.state).toBe('starting')
    const early = await inject(app, { url: '/health', headers: AUTH })
    expect(early.status).toBe(503)
    expect(early.json()).toEqual({ healthy: false, status: 'starting', auth: expect.any(Object) })
    const rollout = await inject(app, { method: 'POST', url: '/rollout', headers: AUTH, body: rolloutBody() })
    expect(rollout.status).toBe(503)
    expect(rollout.json().detail.error.code).toBe('not_ready')
    expect(rollout.headers['retry-after']).toBe('1')
    expect((await inject(app, { url: '/' })).status).toBe(200) // liveness stays up
    hookGate.resolve()
    await app.lifecycle.ready()
    expect(calls).toEqual(['first', 'second'])
    expect(app.lifecycle.state).toBe('ready')
    expect((await inject(app, { url: '/health', headers: AUTH })).status).toBe(200)
  })

  test('no hooks: ready at once', async () => {
    const app = makeApp()
    expect(app.lifecycle.state).toBe('ready')
    await expect(app.lifecycle.ready()).resolves.toBeUndefined()
  })

  test('a hook that throws: ready() rejects STARTUP_FAILED with the cause, /health stays 503', async () => {
    const cause = new Error('cannot load dataset')
    const app = makeApp({
      startupHooks: [
        () => {
          throw cause
        },
      ],
    })
    const err = await app.lifecycle.ready().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TaskServerError)
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_STARTUP_FAILED', cause })
    expect(app.lifecycle.state).toBe('failed')
    const health = await inject(app, { url: '/health', headers: AUTH })
    expect(health.status).toBe(503)
    expect(health.json().status).toBe('startup_failed')
    const info = await inject(app, { url: '/info', headers: AUTH })
    expect(info.json().detail.error.code).toBe('startup_failed')
  })

  test('ready({ signal }) rejects with signal.reason', async () => {
    const hookGate = deferred<void>()
    const app = makeApp({ startupHooks: [() => hookGate.promise] })
    onTestFinished(() => hookGate.resolve())
    const reason = new Error('gave up')
    await expect(app.lifecycle.ready({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
  })
})

describe('close', () => {
  test('cancels running rollouts, waits for them, then runs shutdown hooks in order; idempotent', async () => {
    const order: string[] = []
    const started = deferred<RolloutContext>()
    const app = createTaskApp(
      testConfig({
        rollout: async (r, ctx) => {
          started.resolve(ctx)
          await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()))
          order.push('rollout saw abort')
          await Promise.resolve()
          order.push('rollout settled')
          throw ctx.signal.reason
        },
        shutdownHooks: [
          () => {
            order.push('hook 1')
          },
          async (ctx: LifecycleHookContext) => {
            expect(ctx.signal.aborted).toBe(false)
            order.push('hook 2')
          },
        ],
      }),
    )
    const accepted = await inject(app, {
      method: 'POST',
      url: '/rollout?mode=async',
      headers: AUTH,
      body: rolloutBody(),
    })
    const ctx = await started.promise
    const first = app.lifecycle.close()
    const second = app.lifecycle.close()
    expect(app.lifecycle.state).toBe('closing')
    await Promise.all([first, second])
    expect(ctx.signal.aborted).toBe(true)
    expect(order).toEqual(['rollout saw abort', 'rollout settled', 'hook 1', 'hook 2'])
    expect(app.lifecycle.state).toBe('closed')
    await app.lifecycle.close() // still fine
    // After close: 503 shutting_down, except for liveness and /health.
    const after = await inject(app, { url: accepted.json().status_url, headers: AUTH })
    expect(after.status).toBe(503)
    expect(after.json().detail.error.code).toBe('shutting_down')
    const health = await inject(app, { url: '/health', headers: AUTH })
    expect(health.json()).toMatchObject({ healthy: false, status: 'shutting_down' })
  })

  test('a sync rollout cut by close answers 503 rollout_cancelled', async () => {
    const started = deferred<void>()
    const app = makeApp({
      rollout: async (_r, ctx) => {
        started.resolve()
        await new Promise((_resolve, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
        )
        return { trace_correlation_id: 'x', reward_info: { outcome_reward: 0 } }
      },
    })
    const pending = inject(app, { method: 'POST', url: '/rollout', headers: AUTH, body: rolloutBody() })
    await started.promise
    await app.lifecycle.close()
    const res = await pending
    expect(res.status).toBe(503)
    expect(res.json().detail.error.code).toBe('rollout_cancelled')
  })

  test('a handler that ignores the signal is waited for only graceMs', async () => {
    const { app, hookRan } = await appWithStuckRollout()
    const t0 = performance.now()
    await app.lifecycle.close({ graceMs: 50 })
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45)
    expect(hookRan).toEqual([true])
  })

  test('close({ signal }) ends the wait early, still runs the hooks, and rejects with signal.reason', async () => {
    const { app, hookRan } = await appWithStuckRollout()
    const controller = new AbortController()
    const closing = app.lifecycle.close({ signal: controller.signal, graceMs: 60_000 })
    const reason = new Error('stop now')
    controller.abort(reason)
    await expect(closing).rejects.toBe(reason)
    await expect.poll(() => app.lifecycle.state, { timeout: 10_000 }).toBe('closed')
    expect(hookRan).toEqual([true])
  })

  test('a failing shutdown hook: the others still run, close rejects SHUTDOWN_FAILED', async () => {
    const ran: string[] = []
    const boom = new Error('flush failed')
    const app = makeApp({
      shutdownHooks: [
        () => {
          ran.push('a')
          throw boom
        },
        () => {
          ran.push('b')
        },
      ],
    })
    const err = await app.lifecycle.close().catch((e: unknown) => e)
    expect(err).toMatchObject({ name: 'TaskServerError', code: 'TASKAPP_ERR_SHUTDOWN_FAILED', cause: boom })
    expect(ran).toEqual(['a', 'b'])
  })

  test('a jobStore passed in is not closed (it may be shared); its jobs survive close()', async () => {
    const store = createMemoryJobStore()
    onTestFinished(() => store.close())
    const app = createTaskApp(testConfig({ jobStore: store }))
    const res = await inject(app, {
      method: 'POST',
      url: '/rollout?mode=async',
      headers: AUTH,
      body: rolloutBody(),
    })
    const { id } = res.json()
    await expect.poll(() => store.get(id)?.status, { timeout: 10_000 }).toBe('succeeded')
    await app.lifecycle.close()
    expect(store.get(id)?.status).toBe('succeeded')
  })

  test('close({ signal }) with an already aborted signal: shutdown hooks see it aborted', async () => {
    const seen: boolean[] = []
    const app = createTaskApp(testConfig({ shutdownHooks: [({ signal }) => void seen.push(signal.aborted)] }))
    const reason = new Error('now')
    await expect(app.lifecycle.close({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    await expect.poll(() => app.lifecycle.state, { timeout: 10_000 }).toBe('closed')
    expect(seen).toEqual([true])
  })

  test('await using disposes the lifecycle', async () => {
    const ran: string[] = []
    {
      await using lifecycle = createTaskApp(
        testConfig({ shutdownHooks: [() => void ran.push('closed')] }),
      ).lifecycle
      expect(lifecycle.state).toBe('ready')
    }
    expect(ran).toEqual(['closed'])
  })

  test('startup hooks get a signal that fires on close', async () => {
    let hookSignal: AbortSignal | undefined
    const app = makeApp({
      startupHooks: [
        ({ signal }) =>
          new Promise<void>((_resolve, reject) => {
            hookSignal = signal
            signal.addEventListener('abort', () => reject(signal.reason))
          }),
      ],
    })
    await app.lifecycle.close()
    expect(hookSignal?.aborted).toBe(true)
    await expect(app.lifecycle.ready()).rejects.toMatchObject({ code: 'TASKAPP_ERR_STARTUP_FAILED' })
  })
})
