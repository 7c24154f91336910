/** The lease REST API: `POST` and `DELETE` on `/api/v1/synthtunnel/leases`, for relay API key holders. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { CloseCode, LEASES_PATH, MAX_BODY_CHUNK_BYTES } from '../protocol/frames'
import { redact } from '../types'
import type { RelayLease } from './lease-store'
import { parseLocalTarget } from './local-target'
import { sendJson, sendProblem } from './problem'
import type { RelayContext } from './relay-context'

/** SHA-256 hex of a secret: what the lease store keeps instead of the secret. */
export const hash = (secret: string): string => createHash('sha256').update(secret).digest('hex')
/** A random token with a prefix saying what it is (`rt_`, `at_`, `wt_`, `rk_`). */
export const token = (prefix: string, bytes = 24): string =>
  `${prefix}${randomBytes(bytes).toString('base64url')}`

/** The token of an `Authorization: Bearer <token>` header. */
export function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
  return m?.[1]
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex')
  const y = Buffer.from(b, 'hex')
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Largest lease request body; a reference body is about 200 bytes. */
const MAX_LEASE_BODY_BYTES = 64 * 1024

/** A request body over the limit (thrown by {@link readJson}). */
class BodyTooLarge extends Error {}

/**
 * The JSON of a request body; rejects with {@link BodyTooLarge} past `limit` bytes. The rest of a too
 * large body is read and dropped (not kept), so the caller can still read the 413 answer: a
 * destroyed socket would reach it as a reset instead.
 */
function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > limit) {
        chunks = []
        reject(new BodyTooLarge()) // once settled, later calls do nothing
        return
      }
      chunks.push(c)
    })
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim()
      try {
        resolve(text ? (JSON.parse(text) as unknown) : {})
      } catch (err) {
        reject(err)
      }
    })
    req.on('error', reject)
  })
}

/** A path segment, percent-decoded; `undefined` when it is not valid percent-encoded UTF-8. */
function decodeId(encoded: string): string | undefined {
  try {
    return decodeURIComponent(encoded)
  } catch {
    return undefined
  }
}

const apiError = (res: ServerResponse, status: number, code: string, message: string) =>
  sendJson(res, status, { error: { code, message } })

/** A lease cap that refused a creation: its problem code, the leases counted and the cap. */
interface CapRefusal {
  code: 'TUNNEL_LEASES_PER_KEY_LIMIT' | 'TUNNEL_LEASES_LIMIT'
  leases: number
  limit: number
}

const FREE_A_SLOT = `Delete leases you no longer use (DELETE ${LEASES_PATH}/<lease_id>; closing a tunnel does it)`

/** What a refused creator reads: which cap, how full, and what to do. */
function capDetail({ code, leases, limit }: CapRefusal): string {
  return code === 'TUNNEL_LEASES_PER_KEY_LIMIT'
    ? `This API key already holds ${leases} leases, the relay's limit per key (maxLeasesPerKey = ${limit}). ` +
        `${FREE_A_SLOT} or wait for one to expire, or ask the relay's operator to raise maxLeasesPerKey ` +
        `(TASKAPP_RELAY_MAX_LEASES_PER_KEY).`
    : `The relay already holds ${leases} leases, its limit across all keys (maxLeases = ${limit}). ` +
        `${FREE_A_SLOT} or retry once other tunnels have closed, or ask the relay's operator to raise ` +
        `maxLeases (TASKAPP_RELAY_MAX_LEASES).`
}

/** The lease API of one relay. */
export class LeaseApi {
  private readonly apiKeyHashes: string[]
  /** The tail of the lease creations' admission steps (see {@link LeaseApi.admit}). */
  private gate: Promise<unknown> = Promise.resolve()
  /** When a cap refusal was last logged, by cap and key: at most one warning a minute each. */
  private readonly warnedAt = new Map<string, number>()

  constructor(
    private readonly ctx: RelayContext,
    apiKeys: readonly string[],
    /** The public origin and agent URL, known once the relay listens. */
    private readonly urls: () => { publicBaseUrl: string; agentConnectUrl: string },
  ) {
    this.apiKeyHashes = apiKeys.map(hash)
  }

  private owner(req: IncomingMessage): string | undefined {
    const key = bearer(req.headers.authorization)
    if (!key) return undefined
    const h = hash(key)
    return this.apiKeyHashes.some((k) => sameHash(k, h)) ? h : undefined
  }

  /** The body as a JSON object; `undefined` when it is not one, `'too-large'` past 64 KiB. */
  private async readBody(req: IncomingMessage): Promise<Record<string, unknown> | 'too-large' | undefined> {
    try {
      const parsed = await readJson(req, MAX_LEASE_BODY_BYTES)
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
        ? (parsed as Record<string, unknown>)
        : undefined
    } catch (err) {
      return err instanceof BodyTooLarge ? 'too-large' : undefined
    }
  }

  /**
   * Checks the caps and hands `lease` to the store, one creation after another: the next check
   * starts once this `put` has been called, so concurrent creations cannot overshoot a cap (the
   * store applies calls in order). The `put` itself is awaited outside, so file writes still merge.
   */
  private admit(lease: RelayLease): Promise<CapRefusal | { stored: Promise<void> }> {
    const step = async (): Promise<CapRefusal | { stored: Promise<void> }> => {
      const { store, settings } = this.ctx
      const now = Date.now()
      const mine = await store.count(now, lease.ownerKeyHash)
      if (mine >= settings.maxLeasesPerKey)
        return { code: 'TUNNEL_LEASES_PER_KEY_LIMIT', leases: mine, limit: settings.maxLeasesPerKey }
      const all = await store.count(now)
      if (all >= settings.maxLeases)
        return { code: 'TUNNEL_LEASES_LIMIT', leases: all, limit: settings.maxLeases }
      const stored = Promise.resolve(store.put(lease))
      stored.catch(() => {}) // awaited by create(); this only keeps an early rejection handled
      return { stored }
    }
    const run = this.gate.then(step)
    this.gate = run.catch(() => {})
    return run
  }

  /** Answers 429 for a cap refusal, logging it at most once a minute per cap and key. */
  private refuse(res: ServerResponse, refusal: CapRefusal, key: string, owner: string): void {
    const now = Date.now()
    const id = `${refusal.code}:${owner}`
    if ((this.warnedAt.get(id) ?? -Infinity) <= now - 60_000) {
      this.warnedAt.set(id, now)
      const { code, leases, limit } = refusal
      this.ctx.logger.warn({ code, key: redact(key), leases, limit }, 'relay: lease refused, cap reached')
    }
    sendProblem(res, 429, refusal.code, capDetail(refusal))
  }

  /** `POST /api/v1/synthtunnel/leases`: a new lease, answered in the reference shape (201). */
  async create(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const owner = this.owner(req)
    if (!owner) return apiError(res, 401, 'unauthorized', 'Send Authorization: Bearer <relay API key>.')
    const body = await this.readBody(req)
    if (body === 'too-large') {
      const detail = `The lease request body is larger than ${MAX_LEASE_BODY_BYTES / 1024} KiB; send { client_instance_id, local_target, requested_ttl_seconds } only.`
      return sendProblem(res, 413, 'TUNNEL_PAYLOAD_TOO_LARGE', detail, { connection: 'close' })
    }
    if (!body)
      return apiError(res, 400, 'invalid_request', 'The body must be a JSON object (at most 64 KiB).')
    const { settings, logger } = this.ctx
    const ttlAsked = body.requested_ttl_seconds
    const ttl =
      typeof ttlAsked === 'number' && ttlAsked > 0
        ? Math.min(ttlAsked, settings.leaseTtlSeconds)
        : settings.leaseTtlSeconds
    const target = parseLocalTarget(body.local_target)
    if (!target.ok) return sendProblem(res, 400, 'TUNNEL_INVALID_LOCAL_TARGET', target.detail)
    const agentToken = token('at_')
    const workerToken = token('wt_')
    const lease: RelayLease = {
      leaseId: `lease_${randomBytes(12).toString('hex')}`,
      routeToken: token('rt_'),
      agentTokenHash: hash(agentToken),
      workerTokenHash: hash(workerToken),
      ownerKeyHash: owner,
      clientInstanceId:
        typeof body.client_instance_id === 'string' ? body.client_instance_id.slice(0, 128) : '',
      localTarget: target.value,
      createdAt: Date.now(),
      expiresAt: Date.now() + ttl * 1000,
    }
    const admitted = await this.admit(lease)
    if ('code' in admitted) return this.refuse(res, admitted, bearer(req.headers.authorization) ?? '', owner)
    await admitted.stored
    logger.info({ leaseId: lease.leaseId, route: redact(lease.routeToken), ttl }, 'relay: lease created')
    const { publicBaseUrl, agentConnectUrl } = this.urls()
    sendJson(res, 201, {
      lease_id: lease.leaseId,
      route_token: lease.routeToken,
      public_base_url: `${publicBaseUrl}/s`,
      public_url: `${publicBaseUrl}/s/${lease.routeToken}`,
      agent_connect: { url: agentConnectUrl, agent_token: agentToken },
      worker_token: workerToken,
      expires_at: new Date(lease.expiresAt).toISOString(),
      limits: {
        max_inflight: Math.min(settings.maxInflightPerLease, settings.maxInflightPerKey),
        max_request_bytes: settings.maxRequestBytes,
        max_response_bytes: settings.maxResponseBytes,
        max_body_chunk_bytes: MAX_BODY_CHUNK_BYTES,
      },
      heartbeat: {},
    })
  }

  /**
   * `DELETE /api/v1/synthtunnel/leases/<id>` (`encodedId` as in the path): only by the key that
   * created it; drops its agent (4000). The key is checked first; an id that is not valid
   * percent-encoding names no lease (404).
   */
  async delete(req: IncomingMessage, res: ServerResponse, encodedId: string): Promise<void> {
    const owner = this.owner(req)
    if (!owner) return apiError(res, 401, 'unauthorized', 'Send Authorization: Bearer <relay API key>.')
    const leaseId = decodeId(encodedId)
    const lease = leaseId === undefined ? undefined : await this.ctx.store.get(leaseId)
    if (!lease || !sameHash(lease.ownerKeyHash, owner))
      return apiError(res, 404, 'not_found', 'No such lease.')
    await this.ctx.store.delete(lease.leaseId)
    dropLease(this.ctx, lease, CloseCode.LeaseDeleted, 'lease deleted')
    this.ctx.logger.info({ leaseId: lease.leaseId }, 'relay: lease deleted')
    res.writeHead(204).end()
  }
}

/**
 * Drop the agent of a lease that is gone (deleted, expired): its requests fail with 502 and its
 * socket closes with `code`, which tells the agent not to come back.
 * @example
 * ```ts
 * dropLease(ctx, lease, CloseCode.LeaseExpired, 'lease expired')
 * ```
 */
export function dropLease(ctx: RelayContext, lease: RelayLease, code: number, why: string): void {
  const session = ctx.sessions.get(lease.leaseId)
  if (!session) return
  session.end(502, 'TUNNEL_AGENT_DISCONNECTED', why)
  session.ws.close(code, why)
}
