/**
 * Reading back what Node's `ServerResponse` writes to its socket, for the in-memory request path:
 * the response head (after any 1xx heads) and the body, de-chunked when the app forced
 * `Transfer-Encoding: chunked`.
 */

/** The status and headers of a response head, undici-style (lower-case names, repeats as arrays). */
export interface ResponseHead {
  status: number
  message: string
  headers: Record<string, string | string[]>
}

const CRLFCRLF = Buffer.from('\r\n\r\n')

/**
 * Collects bytes until a full head is in; returns the head and what follows it, or `undefined`
 * while the head is incomplete.
 */
export class HeadReader {
  private buffered: Buffer | undefined

  read(chunk: Buffer): { head: ResponseHead; rest: Buffer } | undefined {
    const all = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk
    const end = all.indexOf(CRLFCRLF)
    if (end === -1) {
      this.buffered = all
      return undefined
    }
    this.buffered = undefined
    return { head: parseHead(all.toString('latin1', 0, end)), rest: all.subarray(end + 4) }
  }
}

function parseHead(text: string): ResponseHead {
  const lines = text.split('\r\n')
  const statusLine = lines[0] ?? ''
  const headers: Record<string, string | string[]> = {}
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!
    const colon = line.indexOf(':')
    if (colon <= 0) continue
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    const seen = headers[name]
    if (seen === undefined) headers[name] = value
    else if (typeof seen === 'string') headers[name] = [seen, value]
    else seen.push(value)
  }
  return { status: Number(statusLine.slice(9, 12)), message: statusLine.slice(13), headers }
}

/** Decodes a chunked body as it streams; what the trailer section holds is dropped. */
export class Dechunker {
  private state: 'size' | 'data' | 'data-crlf' | 'trailer' = 'size'
  private size = ''
  private left = 0

  /** The payload bytes in `chunk` (subarrays of it, no copies). */
  decode(chunk: Buffer): Buffer[] {
    const out: Buffer[] = []
    let i = 0
    while (i < chunk.length) {
      if (this.state === 'data') {
        const n = Math.min(this.left, chunk.length - i)
        out.push(chunk.subarray(i, i + n))
        i += n
        this.left -= n
        if (this.left === 0) [this.state, this.left] = ['data-crlf', 2]
      } else if (this.state === 'data-crlf') {
        const n = Math.min(this.left, chunk.length - i)
        i += n
        this.left -= n
        if (this.left === 0) this.state = 'size'
      } else if (this.state === 'size') {
        const byte = chunk[i++]!
        if (byte !== 0x0a) this.size += String.fromCharCode(byte)
        else {
          const size = parseInt(this.size.split(';')[0]!.trim(), 16)
          this.size = ''
          if (size > 0) [this.state, this.left] = ['data', size]
          else this.state = 'trailer'
        }
      } else i = chunk.length // the trailer section ends the body
    }
    return out
  }
}
