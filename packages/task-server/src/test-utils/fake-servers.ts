/** Small loopback HTTP servers that stand in for MLflow and an OpenAI-compatible vendor in tests. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One recorded call. */
export interface RecordedCall {
  method: string
  path: string
  headers: IncomingMessage['headers']
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- test code reads arbitrary JSON
  body: any
}

/** A loopback server that records calls; `close()` / `await using` stops it. */
export interface FakeServer extends AsyncDisposable {
  readonly url: string
  readonly calls: RecordedCall[]
  close(): Promise<void>
}

type Handler = (call: RecordedCall, res: ServerResponse) => void

async function startRecording(handler: Handler): Promise<FakeServer> {
  const calls: RecordedCall[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      let body: unknown = text
      try {
        body = text ? JSON.parse(text) : undefined
      } catch {
        // keep the raw text
      }
      const call = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body }
      calls.push(call)
      handler(call, res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const close = async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  return { url: `http://127.0.0.1:${port}`, calls, close, [Symbol.asyncDispose]: close }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

/**
 * A fake MLflow tracking server speaking the REST API subset the tracker uses. `failWith`
 * makes every call answer that status.
 */
export async function startFakeMlflow(
  options: { existingExperiment?: string; failWith?: number } = {},
): Promise<FakeServer> {
  let runs = 0
  return startRecording((call, res) => {
    if (options.failWith !== undefined) {
      json(res, options.failWith, { error_code: 'INTERNAL_ERROR', message: 'down' })
      return
    }
    if (call.path.startsWith('/api/2.0/mlflow/experiments/get-by-name')) {
      const name = new URL(call.path, 'http://x').searchParams.get('experiment_name')
      if (name === options.existingExperiment) json(res, 200, { experiment: { experiment_id: '7', name } })
      else json(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no such experiment' })
    } else if (call.path === '/api/2.0/mlflow/experiments/create') {
      json(res, 200, { experiment_id: '42' })
    } else if (call.path === '/api/2.0/mlflow/runs/create') {
      runs += 1
      json(res, 200, { run: { info: { run_id: `run-${runs}` } } })
    } else if (
      call.path === '/api/2.0/mlflow/runs/log-batch' ||
      call.path === '/api/2.0/mlflow/runs/update'
    ) {
      json(res, 200, {})
    } else {
      json(res, 404, { error_code: 'ENDPOINT_NOT_FOUND' })
    }
  })
}

/** A fake OpenAI-compatible vendor: answers `respond(call)` as JSON. */
export async function startFakeVendor(
  respond: (call: RecordedCall) => { status: number; body: unknown; raw?: boolean },
): Promise<FakeServer> {
  return startRecording((call, res) => {
    const { status, body, raw } = respond(call)
    if (raw) {
      res.writeHead(status, { 'content-type': 'text/plain' })
      res.end(String(body))
    } else json(res, status, body)
  })
}
