/** The lease REST API: `POST` and `DELETE` on `/api/v1/synthtunnel/leases`, for relay API key holders. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { CloseCode, MAX_BODY_CHUNK_BYTES } from '../protocol/frames'
import { redact } from '../types'
import type { RelayLease } from './lease-store'
import { sendJson } from './problem'
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

function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > limit) {
        reject(new RangeError('body too large'))
        req.destroy()
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

const apiError = (res: ServerResponse, status: number, code: string, message: string) =>
  sendJson(res, status, { error: { code, message } })

/** The lease API of one relay. */
export class LeaseApi {
  private readonly apiKeyHashes: string[]

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

  private async readBody(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
    try {
      const parsed = await readJson(req, 64 * 1024)
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
        ? (parsed as Record<string, unknown>)
        : undefined
    } catch {
      return undefined
    }
  }

  /** `POST /api/v1/synthtunnel/leases`: a new lease, answered in the reference shape (201). */
  async create(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const owner = this.owner(req)
    if (!owner) return apiError(res, 401, 'unauthorized', 'Send Authorization: Bearer <relay API key>.')
    const body = await this.readBody(req)
    if (!body)
      return apiError(res, 400, 'invalid_request', 'The body must be a JSON object (at most 64 KiB).')
    const { settings, store, logger } = this.ctx
    const ttlAsked = body.requested_ttl_seconds
    const ttl =
      typeof ttlAsked === 'number' && ttlAsked > 0
        ? Math.min(ttlAsked, settings.leaseTtlSeconds)
        : settings.leaseTtlSeconds
    const target = body.local_target as { host?: unknown; port?: unknown } | undefined
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
      localTarget:
        typeof target?.host === 'string' && typeof target.port === 'number'
          ? { host: target.host, port: target.port }
          : undefined,
      createdAt: Date.now(),
      expiresAt: Date.now() + ttl * 1000,
    }
    await store.put(lease)
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

  /** `DELETE /api/v1/synthtunnel/leases/<id>`: only by the key that created it; drops its agent (4000). */
  async delete(req: IncomingMessage, res: ServerResponse, leaseId: string): Promise<void> {
    const owner = this.owner(req)
    if (!owner) return apiError(res, 401, 'unauthorized', 'Send Authorization: Bearer <relay API key>.')
    const lease = await this.ctx.store.get(leaseId)
    if (!lease || !sameHash(lease.ownerKeyHash, owner))
      return apiError(res, 404, 'not_found', 'No such lease.')
    await this.ctx.store.delete(leaseId)
    dropLease(this.ctx, lease, CloseCode.LeaseDeleted, 'lease deleted')
    this.ctx.logger.info({ leaseId }, 'relay: lease deleted')
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
