/**
 * The backend's calls to a task app: `GET /health` and `POST /rollout`, through whatever URL the
 * job gave (a relay URL too), with the worker token when the job has one and a container token when
 * the backend has a signing key (else the job's task-app API key).
 */
import { isObject } from './http'
import type { TokenSigner } from './token-signer'

/** How to reach one job's task app. */
export interface TaskAppAccess {
  readonly url: string
  readonly workerToken?: string
  readonly apiKey?: string
  readonly signer?: TokenSigner
  /** Deadline of one rollout call, in milliseconds. */
  readonly rolloutTimeoutMs: number
}

/** A rollout's scored result. */
export interface RolloutOutcome {
  readonly reward: number
  /** What the task app said about it (`reward_info.details`, `status_detail`), as JSON text. */
  readonly feedback: string
}

/** A rollout the task app refused or failed (HTTP status when it answered). */
export class RolloutCallError extends Error {
  override readonly name = 'RolloutCallError'
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/** The headers of every call to the task app. */
export async function taskAppHeaders(
  access: TaskAppAccess,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (access.workerToken !== undefined) headers['x-synthtunnel-worker-token'] = access.workerToken
  if (access.signer !== undefined) {
    headers['x-synth-container-authorization'] = `Bearer ${await access.signer.token(signal)}`
  } else if (access.apiKey !== undefined) {
    headers['x-api-key'] = access.apiKey
  }
  return headers
}

/** `GET {url}/health`: whether it answered 2xx, and what it said otherwise. */
export async function checkHealth(
  access: TaskAppAccess,
  signal: AbortSignal,
): Promise<{ ok: boolean; detail: string }> {
  try {
    const response = await fetch(`${access.url}/health`, {
      headers: await taskAppHeaders(access, signal),
      signal: AbortSignal.any([signal, AbortSignal.timeout(30_000)]),
    })
    const text = (await response.text()).slice(0, 300)
    return { ok: response.ok, detail: `HTTP ${response.status}${response.ok ? '' : `: ${text}`}` }
  } catch (cause) {
    if (signal.aborted) throw signal.reason
    return { ok: false, detail: `unreachable (${cause instanceof Error ? cause.message : String(cause)})` }
  }
}

function hint(status: number): string {
  if (status === 401 || status === 403 || status === 400) {
    return ' Check the task app trusts the backend (its public key in SYNTH_CONTAINER_TRUSTED_PUBKEYS) or that the job gives its API key, and the worker token for a relay URL.'
  }
  return ''
}

/** Reads `reward_info.outcome_reward` (or `metrics.outcome_reward`, legacy `metrics.mean_return`). */
function outcomeOf(json: unknown): RolloutOutcome {
  const info = isObject(json) ? (json.reward_info ?? json.metrics) : undefined
  const reward = isObject(info) ? (info.outcome_reward ?? info.mean_return) : undefined
  if (typeof reward !== 'number' || !Number.isFinite(reward)) {
    throw new RolloutCallError('The task app answered /rollout without a numeric reward_info.outcome_reward.')
  }
  const details = isObject(info) && info.details !== undefined ? info.details : {}
  const statusDetail = isObject(json) ? json.status_detail : undefined
  const feedback = JSON.stringify(
    typeof statusDetail === 'string' && statusDetail !== ''
      ? { details, status_detail: statusDetail }
      : details,
  )
  return { reward, feedback }
}

/**
 * `POST {url}/rollout`. Rejects with {@link RolloutCallError} for a network failure, a non-2xx
 * answer or a reply without a reward; with `signal.reason` when `signal` aborts.
 */
export async function postRollout(
  access: TaskAppAccess,
  body: unknown,
  signal: AbortSignal,
): Promise<RolloutOutcome> {
  let response: Response
  try {
    response = await fetch(`${access.url}/rollout`, {
      method: 'POST',
      headers: { ...(await taskAppHeaders(access, signal)), 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.any([signal, AbortSignal.timeout(access.rolloutTimeoutMs)]),
    })
  } catch (cause) {
    if (signal.aborted) throw signal.reason
    const why =
      cause instanceof Error && cause.name === 'TimeoutError'
        ? 'did not answer in time'
        : 'could not be reached'
    throw new RolloutCallError(`The task app ${access.url}/rollout ${why}.`, undefined, { cause })
  }
  const text = await response.text().catch((cause: unknown) => {
    if (signal.aborted) throw signal.reason
    throw new RolloutCallError(`The task app's /rollout reply broke off.`, response.status, { cause })
  })
  if (!response.ok) {
    throw new RolloutCallError(
      `The task app answered /rollout with HTTP ${response.status}: ${text.slice(0, 300)}.${hint(response.status)}`,
      response.status,
    )
  }
  try {
    return outcomeOf(JSON.parse(text))
  } catch (cause) {
    if (cause instanceof RolloutCallError) throw cause
    throw new RolloutCallError(
      'The task app answered /rollout with something that is not JSON.',
      response.status,
      { cause },
    )
  }
}
