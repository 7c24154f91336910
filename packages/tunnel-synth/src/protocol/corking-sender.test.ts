import { once } from 'node:events'
import { Socket } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { expect, onTestFinished, test } from 'vitest'
import { corkingSender, wsSocket } from './corking-sender'

/** A connected pair of WebSockets on 127.0.0.1 (server side, client side). */
async function socketPair(): Promise<[WebSocket, WebSocket]> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  onTestFinished(() => new Promise<void>((resolve) => wss.close(() => resolve())))
  await once(wss, 'listening')
  const { port } = wss.address() as { port: number }
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>
  const client = new WebSocket(`ws://127.0.0.1:${port}`)
  onTestFinished(() => client.terminate())
  await once(client, 'open')
  const [server] = await accepted
  onTestFinished(() => server.terminate())
  return [server, client]
}

// These fail if `ws` renames or replaces its private `_socket` field: the corking would then be
// skipped without a word, and every frame would cost its own syscall again.
test('ws still keeps the net.Socket of both ends of a connection where wsSocket() looks', async () => {
  const [server, client] = await socketPair()
  for (const ws of [server, client]) {
    const socket = wsSocket(ws)
    expect(socket).toBeInstanceOf(Socket)
    expect(socket).toBe((ws as unknown as { _socket: unknown })._socket)
  }
})

test('frames sent in one turn are corked together and uncorked on the next; all arrive in order', async () => {
  const [server, client] = await socketPair()
  const received: string[] = []
  client.on('message', (data: Buffer) => received.push(data.toString()))
  const sink = corkingSender(server)
  const socket = wsSocket(server) as unknown as Socket
  const written: number[] = []
  sink.send('a', () => written.push(1))
  expect(socket.writableCorked).toBe(1)
  sink.send('b')
  sink.send(Buffer.from('c'), () => written.push(3))
  expect(socket.writableCorked).toBe(1) // once per turn, not per frame
  await new Promise<void>((resolve) => setImmediate(resolve))
  expect(socket.writableCorked).toBe(0)
  await expect.poll(() => received.length, { timeout: 5_000, interval: 5, message: 'three frames' }).toBe(3)
  expect(received).toEqual(['a', 'b', 'c'])
  expect(written).toEqual([1, 3])
  expect(sink.bufferedAmount).toBe(server.bufferedAmount)
})

test('a frame sent once the socket is closed is dropped and its callback runs at once', async () => {
  const [server] = await socketPair()
  server.terminate()
  let called = false
  corkingSender(server).send('late', () => (called = true))
  expect(called).toBe(true)
})
