/** Dialing the relay and the ATTACH handshake; reconnecting with backoff and jitter. */
import WebSocket from 'ws'
import { SynthTunnelError, SynthTunnelErrorCode } from '../errors'
import { BINARY_FRAMES_CAPABILITY, readRelayMessage } from '../protocol/codec'
import { BINARY_CONTROL_CAPABILITY } from '../protocol/control-frames'
import { CloseCode, MAX_BODY_CHUNK_BYTES } from '../protocol/frames'
import type { AgentOptions, SynthTunnelEvent } from './agent'
import type { PeerAddress } from './in-memory-socket'

/** HTTP statuses of a refused upgrade that mean the lease is gone for good. */
export const GONE_STATUSES: ReadonlySet<number> = new Set([401, 403, 404, 410])
/** Relay close codes that mean the lease is gone for good. */
export const GONE_CLOSE_CODES: ReadonlySet<number> = new Set<number>([
  CloseCode.LeaseDeleted,
  CloseCode.LeaseExpired,
  CloseCode.Replaced,
])
const HANDSHAKE_EVENTS = ['unexpected-response', 'error', 'open', 'message', 'close'] as const
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

/**
 * Whether client frames may use an all-zero masking key. RFC 6455 masks client frames with an
 * unpredictable key so that intermediaries that do not speak WebSocket cannot be fooled by
 * payload bytes into, e.g., cache poisoning. Over TLS (`wss:`) or loopback there is no such
 * intermediary, and a zero key lets ws skip masking (and the relay skip unmasking): a payload
 * copy and an XOR pass per frame. Anywhere else keys stay random.
 * @example
 * ```ts
 * zeroMaskSafe('ws://127.0.0.1:8700/api/v1/synthtunnel/agent') // true
 * ```
 */
export function zeroMaskSafe(connectUrl: string): boolean {
  try {
    const u = new URL(connectUrl)
    return u.protocol === 'wss:' || LOOPBACK_HOSTS.has(u.hostname) || u.hostname.startsWith('127.')
  } catch {
    return false
  }
}

/** ws `generateMask` leaving the key all zero (see {@link zeroMaskSafe}). */
const zeroMask = (mask: Buffer): void => {
  mask.fill(0)
}

/**
 * The delay before reconnect attempt `attempt` (0-based): the ceiling `initialMs · 2^attempt`,
 * capped at `maxMs`, with "equal jitter": half of it fixed, the other half random, so agents that
 * lost the same relay do not all come back in the same instant.
 * @param random `Math.random` or a stand-in in [0, 1) (tests pass a fixed one).
 * @example
 * ```ts
 * backoffDelay(3, 250, 5_000, () => 0.5) // 1500: ceiling 2000, half fixed plus half of the rest
 * ```
 */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random: () => number,
): number {
  const ceiling = Math.min(initialMs * 2 ** attempt, maxMs)
  return Math.round(ceiling / 2 + (ceiling / 2) * random())
}

/**
 * Open one WebSocket to the relay, send ATTACH and wait for ATTACH_ACK. `adopt` takes the socket
 * in the same turn as the ACK, so no frame that follows it is missed; it returns `false` when the
 * agent stopped meanwhile.
 * @throws SynthTunnelError `ATTACH_TIMEOUT`, `ATTACH_REJECTED`, `RELAY_UNREACHABLE` or `LEASE_GONE`.
 * @example
 * ```ts
 * await attach(options, signal, (ws, binary, control) => adoptConnection(ws, binary, control))
 * ```
 */
export function attach(
  o: AgentOptions,
  signal: AbortSignal | undefined,
  adopt: (ws: WebSocket, binary: boolean, control: boolean, peer: PeerAddress | undefined) => boolean,
): Promise<void> {
  signal?.throwIfAborted()
  return new Promise<void>((resolve, reject) => {
    new AttachAttempt(o, signal, adopt, resolve, reject).start()
  })
}

/** One dial and handshake; settles its promise once, whatever happens first. */
class AttachAttempt {
  private readonly ws: WebSocket
  private timer: NodeJS.Timeout | undefined
  private settled = false
  /** The relay's end of the WebSocket's TCP connection (from the upgrade response). */
  private peer: PeerAddress | undefined
  private readonly onAbort = () => this.settle(() => this.reject(this.signal?.reason))

  constructor(
    private readonly o: AgentOptions,
    private readonly signal: AbortSignal | undefined,
    private readonly adopt: (
      ws: WebSocket,
      binary: boolean,
      control: boolean,
      peer: PeerAddress | undefined,
    ) => boolean,
    private readonly resolve: () => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.ws = new WebSocket(o.connectUrl, {
      headers: { authorization: `Bearer ${o.agentToken}` },
      perMessageDeflate: false,
      maxPayload: 16 * 1024 * 1024,
      handshakeTimeout: o.attachTimeoutMs,
      ...(zeroMaskSafe(o.connectUrl) ? { generateMask: zeroMask } : {}),
    })
  }

  start(): void {
    const { ws, o } = this
    ws.on('error', () => {}) // reported through the handshake or 'close'
    this.timer = setTimeout(
      () =>
        this.fail(
          SynthTunnelErrorCode.AttachTimeout,
          `The relay did not answer ATTACH within ${o.attachTimeoutMs} ms. Check the relay (${o.connectUrl}) or raise attachTimeoutMs.`,
        ),
      o.attachTimeoutMs,
    )
    this.signal?.addEventListener('abort', this.onAbort, { once: true })
    ws.on('unexpected-response', (req, res) => {
      const status = res.statusCode ?? 0
      res.resume()
      req.destroy()
      const hint = GONE_STATUSES.has(status)
        ? 'The lease is unknown or expired: open a new tunnel.'
        : 'Check the relay.'
      const message = `The relay refused the agent connection (HTTP ${status}). ${hint}`
      this.fail(SynthTunnelErrorCode.AttachRejected, message, { status })
    })
    ws.on('error', (err) =>
      this.fail(
        SynthTunnelErrorCode.RelayUnreachable,
        `Could not connect to the relay at ${o.connectUrl}: ${err.message}. Check that the relay runs and is reachable.`,
        { cause: err },
      ),
    )
    ws.once('upgrade', ({ socket }) => {
      if (socket.remoteAddress === undefined) return
      const family = socket.remoteFamily ?? 'IPv4'
      this.peer = { address: socket.remoteAddress, port: socket.remotePort ?? 0, family }
    })
    ws.on('open', () => ws.send(JSON.stringify(attachFrame(o))))
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary))
    ws.on('close', (code, reason) =>
      this.fail(
        GONE_CLOSE_CODES.has(code) ? SynthTunnelErrorCode.LeaseGone : SynthTunnelErrorCode.AttachRejected,
        `The relay closed the connection during ATTACH (code ${code}${reason.length ? `: ${reason.toString()}` : ''}).`,
        { status: code },
      ),
    )
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    const frame = readRelayMessage(data, isBinary, false)
    if (frame?.type !== 'ATTACH_ACK') {
      return this.fail(
        SynthTunnelErrorCode.AttachRejected,
        'The relay answered ATTACH with something other than ATTACH_ACK. Check that the URL is a SynthTunnel relay.',
      )
    }
    const caps = frame.capabilities
    const accepted = (key: string) =>
      this.o.binaryFrames &&
      typeof caps === 'object' &&
      caps !== null &&
      (caps as Record<string, unknown>)[key] === true
    const binary = accepted(BINARY_FRAMES_CAPABILITY)
    const control = accepted(BINARY_CONTROL_CAPABILITY)
    this.settle(() => {
      if (this.adopt(this.ws, binary, control, this.peer)) return this.resolve()
      this.ws.terminate()
      this.reject(
        new SynthTunnelError(SynthTunnelErrorCode.LeaseGone, 'The agent was stopped while attaching.'),
      )
    })
  }

  private fail(
    code: SynthTunnelErrorCode,
    message: string,
    options?: { cause?: unknown; status?: number },
  ): void {
    this.settle(() => {
      this.ws.terminate()
      this.reject(new SynthTunnelError(code, message, options))
    })
  }

  private settle(then: () => void): void {
    if (this.settled) return
    this.settled = true
    clearTimeout(this.timer)
    this.signal?.removeEventListener('abort', this.onAbort)
    // the handshake's listeners go; the connection that adopts the socket adds its own
    for (const event of HANDSHAKE_EVENTS) this.ws.removeAllListeners(event)
    this.ws.on('error', () => {})
    then()
  }
}

function attachFrame(o: AgentOptions): object {
  return {
    type: 'ATTACH',
    agent_id: o.agentId,
    leases: [{ lease_id: o.leaseId, local_target: o.localTarget }],
    capabilities: {
      streaming: true,
      max_inflight: o.maxInflight,
      max_body_chunk_bytes: MAX_BODY_CHUNK_BYTES,
      supports_cancel: true,
      ...(o.binaryFrames ? { [BINARY_FRAMES_CAPABILITY]: true, [BINARY_CONTROL_CAPABILITY]: true } : {}),
    },
  }
}

/** What {@link Reconnector} needs from its agent. */
export interface ReconnectHost {
  readonly options: AgentOptions
  isStopped(): boolean
  /** One attach attempt. */
  connect(): Promise<void>
  /** The lease is gone for good: stop with this error. */
  gone(error: SynthTunnelError): void
  emit(event: SynthTunnelEvent): void
}

/** The agent's reconnect loop: backoff with jitter per failed attempt, reset by a good attach. */
export class Reconnector {
  private attempt = 0
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly host: ReconnectHost,
    private readonly random: () => number = Math.random,
  ) {}

  /** Reconnect attempts since the last good attach. */
  get attempts(): number {
    return this.attempt
  }

  /** A connection attached: the next drop starts the backoff over. */
  reset(): void {
    this.attempt = 0
  }

  cancel(): void {
    clearTimeout(this.timer)
  }

  /** Try again after the next backoff delay; `error` is why the last attempt failed. */
  schedule(error?: SynthTunnelError): void {
    const { host } = this
    if (host.isStopped()) return
    const o = host.options
    const delayMs = backoffDelay(this.attempt, o.reconnectInitialMs, o.reconnectMaxMs, this.random)
    this.attempt += 1
    o.logger.info({ attempt: this.attempt, delayMs }, 'synthtunnel: agent reconnecting')
    host.emit({ type: 'reconnecting', attempt: this.attempt, delayMs, ...(error ? { error } : {}) })
    this.timer = setTimeout(() => this.retry(), delayMs)
    this.timer.unref()
  }

  private retry(): void {
    this.host.connect().catch((err: unknown) => {
      if (this.host.isStopped()) return
      const e =
        err instanceof SynthTunnelError
          ? err
          : new SynthTunnelError(SynthTunnelErrorCode.RelayUnreachable, String(err), { cause: err })
      if (
        e.code === SynthTunnelErrorCode.LeaseGone ||
        (e.status !== undefined && GONE_STATUSES.has(e.status))
      ) {
        this.host.gone(
          new SynthTunnelError(
            SynthTunnelErrorCode.LeaseGone,
            `The relay no longer knows the lease (${e.message}). Open a new tunnel.`,
            { cause: e, ...(e.status === undefined ? {} : { status: e.status }) },
          ),
        )
        return
      }
      this.schedule(e)
    })
  }
}
