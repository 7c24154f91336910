/** The entry of public traffic on `/s/<route_token>/...`: route, worker token, admission, then forward. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { WebSocket } from 'ws'
import { admit, workerTokenMatches } from './admission'
import { bearer } from './lease-api'
import { sendProblem } from './problem'
import { PublicRequest } from './public-request'
import type { RelayContext } from './relay-context'

/** 401 for a missing or wrong worker token: one code for both (as the reference relay), the detail says which. */
function refuseWorkerToken(res: ServerResponse, sent: string | undefined, inHeader: boolean): void {
  const where = inHeader ? 'x-synthtunnel-worker-token' : 'Authorization: Bearer'
  sendProblem(
    res,
    401,
    'TUNNEL_AUTH_REQUIRED',
    sent
      ? `The worker token sent in ${where} does not match this tunnel's: send the one its lease gave (in x-synthtunnel-worker-token).`
      : 'No worker token sent: send it in x-synthtunnel-worker-token (or Authorization: Bearer).',
    { 'www-authenticate': 'Bearer realm="synthtunnel"' },
    sent ? 'Worker token invalid' : undefined,
  )
}

/**
 * Serve one public request on `/s/<routeToken><rest>`: check the route and the worker token, admit
 * it (agent attached, capacity, size) and forward it through the lease's agent.
 * @example
 * ```ts
 * await handlePublicRequest(ctx, req, res, 'rt_abc', '/health?x=1')
 * ```
 */
export async function handlePublicRequest(
  ctx: RelayContext,
  req: IncomingMessage,
  res: ServerResponse,
  routeToken: string,
  rest: string,
  /** Came over a cluster hop: serve it here or fail, never hop again. */
  viaPeer = false,
): Promise<void> {
  const lease = ctx.cluster?.localLease(routeToken) ?? (await ctx.store.findByRouteToken(routeToken))
  if (!lease || lease.expiresAt <= Date.now()) {
    return sendProblem(res, 404, 'TUNNEL_NOT_FOUND', 'No tunnel has this route token (it may have expired).')
  }
  ctx.observer?.tunnel(res, lease)
  const headerToken = req.headers['x-synthtunnel-worker-token']
  const bearerToken = bearer(req.headers.authorization)
  const workerToken = typeof headerToken === 'string' ? headerToken : bearerToken
  if (!workerToken || !workerTokenMatches(lease, workerToken)) {
    return refuseWorkerToken(res, workerToken, typeof headerToken === 'string')
  }
  if (ctx.closing) return sendProblem(res, 503, 'TUNNEL_RELAY_SHUTTING_DOWN', 'The relay is shutting down.')
  const session = ctx.sessions.get(lease.leaseId)
  if (!session && ctx.cluster && !viaPeer) return ctx.cluster.forward(req, res, lease, routeToken, rest)
  if (!session || session.ws.readyState !== WebSocket.OPEN) {
    return sendProblem(
      res,
      503,
      'TUNNEL_AGENT_OFFLINE',
      'No agent is attached to this tunnel; retry later.',
      {
        'retry-after': '1',
      },
    )
  }
  if (!admit(ctx, lease, session, res)) return
  const { maxRequestBytes } = ctx.settings
  if (Number(req.headers['content-length'] ?? 0) > maxRequestBytes) {
    res.shouldKeepAlive = false
    return sendProblem(
      res,
      413,
      'TUNNEL_PAYLOAD_TOO_LARGE',
      `The request body exceeds ${maxRequestBytes} bytes.`,
    )
  }
  const pr = new PublicRequest(ctx, session, req, res, lease)
  ctx.observer?.forwarding(res, pr)
  if (ctx.debug) ctx.tunneled.set(res, pr)
  session.inflight.set(pr.rid, pr)
  ctx.shares.take(lease)
  pr.forward(lease.leaseId, rest, bearerToken === workerToken)
}
