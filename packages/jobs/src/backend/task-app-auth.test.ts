/**
 * How the backend authenticates to task apps, against the real thing: container tokens checked by
 * a real task server that trusts (or does not trust) the backend's public key, and a real
 * SynthTunnel relay + agent in front of the task app that needs the worker token.
 */
import { generateContainerKeyPair } from '@taskapp/task-server'
import { synthTunnel } from '@taskapp/tunnel-synth'
import { createRelayServer } from '@taskapp/tunnel-synth/relay'
import { recordingLogger } from '@taskapp/test-utils'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createDeterministicModel } from '../model/deterministic-model'
import { createLocalBackend } from './local-backend'
import {
  AUTH,
  BACKEND_KEY,
  call,
  exampleConfig,
  g3Body,
  serveExampleTaskApp,
  untilEnd,
  backendWithModel,
} from './test-helpers'

const SMALL = { population: { num_generations: 1, children_per_generation: 1 } }

/** The example config without the task app's API key: only a container token can get in. */
function tokenOnlyConfig(url: string): Record<string, unknown> {
  const { container_api_key: _key, ...rest } = exampleConfig(url, SMALL)
  return rest
}

describe('container tokens', { timeout: 60_000 }, () => {
  it('signs every task-app call; a task app trusting the printed public key accepts them', async () => {
    const pair = generateContainerKeyPair({ kid: 'k1' })
    await using model = await createDeterministicModel()
    const logger = recordingLogger()
    await using backend = await createLocalBackend({
      upstream: { baseUrl: model.url },
      apiKeys: [BACKEND_KEY],
      signingKey: pair.privateKeySeed,
      signingKeyId: 'k1',
      logger,
    })
    expect(backend.publicKey).toBe(pair.publicKey)
    expect(backend.trustedKey).toBe(pair.trusted)
    // It says which key to trust, and never logs the private one.
    expect(logger.records).toContainEqual(
      expect.objectContaining({
        level: 'info',
        msg: `local backend listening; task apps must trust SYNTH_CONTAINER_TRUSTED_PUBKEYS=${pair.trusted}`,
      }),
    )
    expect(JSON.stringify(logger.records)).not.toContain(pair.privateKeySeed)
    const task = await serveExampleTaskApp({
      containerAuth: { trustedKeys: backend.trustedKey as string, mode: 'required' },
    })
    const created = await call(backend, 'POST', '/api/v1/offline/jobs', g3Body(tokenOnlyConfig(task.url)))
    const { status, sse } = await untilEnd(backend, created.json.job_id as string)
    expect(status.error).toBeNull()
    expect(status.status).toBe('succeeded')
    expect(task.rollouts()).toBe(status.rollouts_used)
    expect(sse.events[0]?.data).toMatchObject({ container_auth: 'container_token' })
  })

  it('a task app that does not trust the key refuses the rollouts and the job fails saying why', async () => {
    const stranger = generateContainerKeyPair()
    await using backend = await createLocalBackend({
      upstream: { baseUrl: 'http://127.0.0.1:9/v1' },
      signingKey: generateContainerKeyPair().privateKey,
    })
    const task = await serveExampleTaskApp({
      containerAuth: { trustedKeys: stranger.trusted, mode: 'required' },
    })
    const created = await call(backend, 'POST', '/api/v1/offline/jobs', g3Body(tokenOnlyConfig(task.url)))
    const { status } = await untilEnd(backend, created.json.job_id as string)
    expect(status).toMatchObject({ status: 'failed', error_code: 'TASKAPP_ERR_JOBS_ROLLOUT_FAILED' })
    expect(status.error).toContain('HTTP 401')
    expect(status.error).toContain('SYNTH_CONTAINER_TRUSTED_PUBKEYS')
    expect(task.rollouts()).toBe(0)
  })

  it('rejects an unusable signing key with a typed error', async () => {
    await expect(
      createLocalBackend({ upstream: { baseUrl: 'http://127.0.0.1:9/v1' }, signingKey: 'bm90LWEta2V5' }),
    ).rejects.toMatchObject({
      code: 'TASKAPP_ERR_JOBS_INVALID_CONFIG',
      message: expect.stringContaining('signingKey'),
    })
  })
})

describe('through a SynthTunnel relay', { timeout: 60_000 }, () => {
  async function relayedTaskApp() {
    const task = await serveExampleTaskApp()
    const relay = await createRelayServer({ apiKeys: ['relay-key'] })
    onTestFinished(() => relay.close())
    const origin = new URL(task.url)
    const tunnel = await synthTunnel({
      backendUrl: relay.url,
      apiKey: 'relay-key',
      localApiKeys: [],
      env: {},
    }).open({
      localUrl: task.url,
      host: origin.hostname,
      port: Number(origin.port),
    })
    onTestFinished(() => tunnel.close())
    return { task, tunnel }
  }

  it('sends the worker token given in the create header and reaches the task app through the relay', async () => {
    const { task, tunnel } = await relayedTaskApp()
    await using local = await backendWithModel()
    const { backend } = local
    const created = await call(
      backend,
      'POST',
      '/api/v1/offline/jobs',
      g3Body(exampleConfig(tunnel.url, SMALL)),
      {
        ...AUTH,
        'x-synthtunnel-worker-token': tunnel.workerToken,
      },
    )
    const { status } = await untilEnd(backend, created.json.job_id as string)
    expect(status.error).toBeNull()
    expect(status.status).toBe('succeeded')
    expect(task.rollouts()).toBe(status.rollouts_used)
  })

  it('takes the worker token from the body too; without one the relay refuses and the job fails', async () => {
    const { task, tunnel } = await relayedTaskApp()
    await using model = await createDeterministicModel()
    await using backend = await createLocalBackend({ upstream: { baseUrl: model.url } })
    const pl = exampleConfig(tunnel.url, SMALL)
    const withBody = await call(
      backend,
      'POST',
      '/api/v1/offline/jobs',
      g3Body(pl, { container_worker_token: tunnel.workerToken }),
    )
    expect((await untilEnd(backend, withBody.json.job_id as string)).status.status).toBe('succeeded')
    const ran = task.rollouts()
    const without = await call(backend, 'POST', '/api/v1/offline/jobs', g3Body(pl))
    const { status, sse } = await untilEnd(backend, without.json.job_id as string)
    expect(status).toMatchObject({ status: 'failed', error_code: 'TASKAPP_ERR_JOBS_ROLLOUT_FAILED' })
    expect(status.error).toContain('HTTP 401')
    expect(task.rollouts()).toBe(ran)
    // The health check (mode "warn" by default) saw the refusal first and said so.
    expect(sse.events.find((e) => e.data.warning === 'health_check_failed')).toBeDefined()
  })
})
