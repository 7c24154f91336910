// microbench: cost of the local hop only (agent's undici -> app), in one process
import { createServer, IncomingMessage, ServerResponse } from 'node:http'
import { Pool } from 'undici'
import { inMemoryConnector } from './src/agent/in-memory-socket'
import { Writable } from 'node:stream'
const server = createServer((req, res) => { const chunks: Buffer[] = []; req.on('data', (c) => chunks.push(c)); req.on('end', () => { const b = Buffer.concat(chunks); res.writeHead(200, { 'content-type': 'application/json', 'content-length': b.length }); res.end(b) }) })
server.listen(0, '127.0.0.1'); await new Promise(r => server.once('listening', r))
const port = (server.address() as any).port
const body = Buffer.from(JSON.stringify({ data: 'x'.repeat(988) }))
const headers = ['content-type', 'application/json', 'x-synth-relay', '1', 'x-forwarded-proto', 'https']
function viaPool(pool: Pool) {
  return () => new Promise<void>((resolve, reject) => {
    pool.dispatch({ method: 'POST', path: '/json', headers, body }, {
      onRequestStart() {}, onResponseStart() {}, onResponseData() {}, onResponseEnd: () => resolve(), onResponseError: (_c: unknown, e: Error) => reject(e),
    } as any)
  })
}
// prototype req/res pair: no HTTP bytes at all on the request side; response head from res._header
function viaPair() {
  return () => new Promise<void>((resolve) => {
    let head = true
    const sock: any = new Writable({ write(data: any, enc: any, cb: any) { if (head) { head = false; (res as any)._header.split('\r\n') } cb() } }); sock.remoteAddress = '127.0.0.1'; sock.readable = false
    const req = new IncomingMessage(sock)
    req.method = 'POST'; req.url = '/json'; req.httpVersion = '1.1'; req.httpVersionMajor = 1; req.httpVersionMinor = 1
    req.rawHeaders = [...headers, 'content-length', String(body.length)]
    req.push(body); req.push(null); req.complete = true
    const res = new ServerResponse(req)
    res.useChunkedEncodingByDefault = false
    res.assignSocket(sock)
    res.on('finish', () => resolve())
    server.emit('request', req, res)
  })
}
async function run(name: string, one: () => Promise<void>) {
  const C = 32, T = 2500
  const loop = async (until: number) => { let n = 0; while (performance.now() < until) { await one(); n++ } return n }
  await Promise.all(Array.from({ length: C }, () => loop(performance.now() + 800)))
  const c0 = process.cpuUsage(); const t0 = performance.now()
  const ns = await Promise.all(Array.from({ length: C }, () => loop(t0 + T)))
  const n = ns.reduce((a, b) => a + b); const c = process.cpuUsage(c0)
  console.log(name.padEnd(8), (n / (T / 1000)).toFixed(0).padStart(6), 'req/s', ((c.user + c.system) / n).toFixed(1), 'µs/req')
}
const tcp = new Pool(`http://127.0.0.1:${port}`, { connections: 32 })
const mem = new Pool(`http://127.0.0.1:${port}`, { connections: 32, connect: inMemoryConnector(server, () => undefined, () => {}) })
for (let i = 0; i < 2; i++) { await run('tcp', viaPool(tcp)); await run('memory', viaPool(mem)); await run('pair', viaPair()) }
await tcp.close(); await mem.close(); server.close()
