import { describe, expect, onTestFinished, test } from 'vitest'
import { createMlflowTracker, createTaskApp } from './index'
import type { RolloutCompleteEvent } from './index'
import { recordingLogger } from '@taskapp/test-utils'
import { AUTH, inject, rolloutBody, startFakeMlflow, testConfig } from './test-helpers'

const request = {
  trace_correlation_id: 'trace-7',
  env: { env_name: 'banking77', seed: 3, config: {} },
  policy: { policy_name: 'p', config: { model: 'gpt-4o-mini' }, output_mode: 'tool_calls' as const },
  on_done: 'reset',
  safety: { max_time_s: 3600 },
}

function success(durationMs = 12.5): RolloutCompleteEvent {
  return {
    request,
    requestId: 'req-1',
    durationMs,
    response: {
      trace_correlation_id: 'trace-7',
      reward_info: { outcome_reward: 0.8, outcome_objectives: { reward: 0.8 }, details: {} },
    },
  }
}

describe('createMlflowTracker', () => {
  test('creates the experiment once, then one run per rollout with params, metrics and status', async () => {
    await using mlflow = await startFakeMlflow()
    const tracker = createMlflowTracker({
      trackingUri: `${mlflow.url}/`,
      experiment: 'banking77 gepa',
      headers: { authorization: 'Bearer tok' },
    })
    expect(await tracker.logRollout(success())).toEqual({ runId: 'run-1' })
    expect(await tracker.logRollout(success())).toEqual({ runId: 'run-2' })
    const paths = mlflow.calls.map((c) => `${c.method} ${c.path.split('?')[0]}`)
    expect(paths).toEqual([
      'GET /api/2.0/mlflow/experiments/get-by-name',
      'POST /api/2.0/mlflow/experiments/create',
      'POST /api/2.0/mlflow/runs/create',
      'POST /api/2.0/mlflow/runs/log-batch',
      'POST /api/2.0/mlflow/runs/update',
      'POST /api/2.0/mlflow/runs/create',
      'POST /api/2.0/mlflow/runs/log-batch',
      'POST /api/2.0/mlflow/runs/update',
    ])
    expect(mlflow.calls[0]?.path).toBe(
      '/api/2.0/mlflow/experiments/get-by-name?experiment_name=banking77%20gepa',
    )
    expect(mlflow.calls[1]?.body).toEqual({ name: 'banking77 gepa' })
    expect(mlflow.calls[2]?.body).toMatchObject({
      experiment_id: '42',
      run_name: 'rollout-trace-7',
      tags: [{ key: 'taskapp.request_id', value: 'req-1' }],
    })
    const batch = mlflow.calls[3]?.body
    expect(batch.run_id).toBe('run-1')
    expect(batch.params).toEqual([
      { key: 'trace_correlation_id', value: 'trace-7' },
      { key: 'env_name', value: 'banking77' },
      { key: 'seed', value: '3' },
      { key: 'policy_name', value: 'p' },
      { key: 'model', value: 'gpt-4o-mini' },
      { key: 'output_mode', value: 'tool_calls' },
    ])
    expect(batch.metrics.map((m: { key: string; value: number }) => [m.key, m.value])).toEqual([
      ['execution_time_ms', 12.5],
      ['success', 1],
      ['outcome_reward', 0.8],
    ])
    expect(mlflow.calls[4]?.body).toMatchObject({
      run_id: 'run-1',
      status: 'FINISHED',
      end_time: expect.any(Number),
    })
    expect(mlflow.calls.every((c) => c.headers.authorization === 'Bearer tok')).toBe(true)
  })

  test('uses an existing experiment', async () => {
    await using mlflow = await startFakeMlflow({ existingExperiment: 'exp' })
    const tracker = createMlflowTracker({ trackingUri: mlflow.url, experiment: 'exp' })
    await tracker.logRollout(success())
    expect(mlflow.calls[1]?.body).toMatchObject({ experiment_id: '7' })
    expect(mlflow.calls.some((c) => c.path.includes('experiments/create'))).toBe(false)
  })

  test('a failed rollout: success 0, no reward, status FAILED, error code tag', async () => {
    await using mlflow = await startFakeMlflow()
    const tracker = createMlflowTracker({ trackingUri: mlflow.url, experiment: 'e' })
    const { TaskServerError } = await import('./errors')
    await tracker.logRollout({
      request,
      requestId: 'r',
      durationMs: 3,
      error: new TaskServerError('TASKAPP_ERR_ROLLOUT_FAILED', 'x'),
    })
    const create = mlflow.calls.find((c) => c.path === '/api/2.0/mlflow/runs/create')
    expect(create?.body.tags).toContainEqual({
      key: 'taskapp.error_code',
      value: 'TASKAPP_ERR_ROLLOUT_FAILED',
    })
    const batch = mlflow.calls.find((c) => c.path === '/api/2.0/mlflow/runs/log-batch')
    expect(batch?.body.metrics.map((m: { key: string }) => m.key)).toEqual(['execution_time_ms', 'success'])
    expect(batch?.body.metrics[1].value).toBe(0)
    expect(mlflow.calls.at(-1)?.body.status).toBe('FAILED')
  })

  test('logRollout rejects MLFLOW_REQUEST_FAILED on an error answer; onRolloutComplete only logs', async () => {
    await using mlflow = await startFakeMlflow({ failWith: 500 })
    const logger = recordingLogger()
    const tracker = createMlflowTracker({
      trackingUri: mlflow.url,
      experiment: 'e',
      logger,
      headers: { authorization: 'Bearer secret-token' },
    })
    await expect(tracker.logRollout(success())).rejects.toMatchObject({
      code: 'TASKAPP_ERR_MLFLOW_REQUEST_FAILED',
    })
    await expect(tracker.onRolloutComplete(success())).resolves.toBeUndefined()
    expect(logger.records.filter((l) => l.level === 'warn')).toHaveLength(1)
    expect(
      JSON.stringify(logger.records, (_k, v: unknown) => (v instanceof Error ? v.message : v)),
    ).not.toContain('secret-token')
  })

  test('an unreachable server: MLFLOW_REQUEST_FAILED with the cause', async () => {
    const mlflow = await startFakeMlflow()
    const url = mlflow.url
    await mlflow.close()
    const tracker = createMlflowTracker({ trackingUri: url, experiment: 'e', timeoutMs: 2000 })
    const err = await tracker.logRollout(success()).catch((e: unknown) => e)
    expect(err).toMatchObject({
      name: 'TaskServerError',
      code: 'TASKAPP_ERR_MLFLOW_REQUEST_FAILED',
      cause: expect.anything(),
    })
  })

  test('logRollout({ signal }) rejects with signal.reason', async () => {
    await using mlflow = await startFakeMlflow()
    const tracker = createMlflowTracker({ trackingUri: mlflow.url, experiment: 'e' })
    const reason = new Error('stop')
    await expect(tracker.logRollout(success(), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    expect(mlflow.calls).toHaveLength(0)
  })

  test.each([
    [{ trackingUri: 'not a url', experiment: 'e' }, 'trackingUri'],
    [{ trackingUri: 'ftp://127.0.0.1', experiment: 'e' }, 'trackingUri'],
    [{ trackingUri: 'http://127.0.0.1:5000', experiment: '' }, 'experiment'],
    [{ trackingUri: 'http://127.0.0.1:5000', experiment: 'e', timeoutMs: 0 }, 'timeoutMs'],
  ])('rejects bad options %o', (options, field) => {
    expect(() => createMlflowTracker(options)).toThrow(
      expect.objectContaining({
        code: 'TASKAPP_ERR_INVALID_CONFIG',
        message: expect.stringContaining(field),
      }),
    )
  })
})

describe('wired into a task app', () => {
  test('every rollout is logged; a broken tracking server never breaks a rollout', async () => {
    await using mlflow = await startFakeMlflow()
    const tracker = createMlflowTracker({ trackingUri: mlflow.url, experiment: 'app' })
    const app = createTaskApp(testConfig({ onRolloutComplete: tracker.onRolloutComplete }))
    onTestFinished(() => app.lifecycle.close())
    const res = await inject(app, { method: 'POST', url: '/rollout', headers: AUTH, body: rolloutBody() })
    expect(res.status).toBe(200)
    await expect
      .poll(() => mlflow.calls.some((c) => c.path === '/api/2.0/mlflow/runs/update'), { timeout: 10_000 })
      .toBe(true)

    await using broken = await startFakeMlflow({ failWith: 503 })
    const logger = recordingLogger()
    const brokenTracker = createMlflowTracker({ trackingUri: broken.url, experiment: 'app', logger })
    const app2 = createTaskApp(testConfig({ onRolloutComplete: brokenTracker.onRolloutComplete }))
    onTestFinished(() => app2.lifecycle.close())
    const res2 = await inject(app2, { method: 'POST', url: '/rollout', headers: AUTH, body: rolloutBody() })
    expect(res2.status).toBe(200)
    await expect
      .poll(() => logger.records.some((l) => l.msg?.includes('mlflow')), { timeout: 10_000 })
      .toBe(true)
  })
})
