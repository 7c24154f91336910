/** The SSE parser against the WHATWG rules, with chunks cut at every position. */
import { describe, expect, it } from 'vitest'
import { createSseParser, type SseMessage } from './sse'

function parse(chunks: readonly string[]): SseMessage[] {
  const out: SseMessage[] = []
  const parser = createSseParser((m) => out.push(m))
  for (const chunk of chunks) parser.feed(chunk)
  return out
}

/** Every way to cut `text` in two, plus one character per chunk. */
function cuts(text: string): string[][] {
  const ways = [[text], [...text]]
  for (let i = 1; i < text.length; i++) ways.push([text.slice(0, i), text.slice(i)])
  return ways
}

const stream =
  '\uFEFF: comment\n' +
  'data: {"type":"a","seq":1}\n\n' +
  'event: x\r\nid: 7\r\ndata:first\r\ndata:  second\r\n\r\n' +
  'data\rdata: after-empty\r\r' +
  'id: 9\n\n' + // no data: nothing dispatched
  'retry: 10\ndata: last\n\n' +
  'data: unterminated'

const expected: SseMessage[] = [
  { data: '{"type":"a","seq":1}', event: undefined, id: undefined },
  { data: 'first\n second', event: 'x', id: '7' },
  { data: '\nafter-empty', event: undefined, id: undefined },
  { data: 'last', event: undefined, id: undefined },
]

describe('createSseParser', () => {
  it('parses a stream with BOM, comments, CR/LF/CRLF, multi-line data, empty data and an unterminated tail', () => {
    expect(parse([stream])).toEqual(expected)
  })

  it('gives the same events however the chunks are cut (a CRLF split across chunks counts once)', () => {
    for (const chunks of cuts(stream)) expect(parse(chunks)).toEqual(expected)
  })

  it('does not carry an id over to later events', () => {
    expect(parse(['id: 1\ndata: a\n\ndata: b\n\n'])).toEqual([
      { data: 'a', event: undefined, id: '1' },
      { data: 'b', event: undefined, id: undefined },
    ])
  })
})
