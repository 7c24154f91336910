import { describe, expect, test } from 'vitest'
import { Dechunker, HeadReader } from './response-bytes'

/** `bytes` cut into pieces of `size` (the way writes may arrive). */
const pieces = (bytes: Buffer, size: number) =>
  Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size))

describe('reading back what a ServerResponse writes', () => {
  const wire = Buffer.from(
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '4\r\none,\r\n4;ext=1\r\ntwo,\r\n5\r\nthree\r\n0\r\nx-trailer: t\r\n\r\n',
  )

  test.each([1, 2, 3, 7, 64, wire.length])(
    'head and de-chunked body, written in pieces of %i bytes',
    (size) => {
      const head = new HeadReader()
      const dechunker = new Dechunker()
      let got: ReturnType<HeadReader['read']>
      const body: Buffer[] = []
      for (const piece of pieces(wire, size)) {
        if (!got) {
          got = head.read(piece)
          if (got) body.push(...dechunker.decode(got.rest))
        } else body.push(...dechunker.decode(piece))
      }
      expect(got?.head).toEqual({
        status: 200,
        message: 'OK',
        headers: {
          'content-type': 'text/plain',
          'set-cookie': ['a=1', 'b=2'],
          'transfer-encoding': 'chunked',
        },
      })
      expect(Buffer.concat(body).toString()).toBe('one,two,three')
    },
  )
})
