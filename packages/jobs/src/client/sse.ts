/**
 * A server-sent events parser (the WHATWG "event stream interpretation" rules), fed text chunks cut
 * anywhere: lines end in CR, LF or CRLF (a CRLF split across chunks counts once), a leading BOM is
 * dropped, `:` lines are comments, `data` lines join with `\n`, one space after the colon is
 * dropped, an event is dispatched on a blank line only when it has data, and an unterminated event
 * at the end of the stream is discarded. `retry:` is ignored (reconnection is the client's own).
 */

/** One dispatched event. */
export interface SseMessage {
  readonly data: string
  /** The `event:` field, when given. */
  readonly event: string | undefined
  /**
   * The `id:` field of this event's own lines, when given. (Unlike a browser's `lastEventId`, an id
   * does not carry over to later events: the client dedupes by it.)
   */
  readonly id: string | undefined
}

/** A parser: `feed` text as it arrives; each complete event goes to the callback. */
export interface SseParser {
  feed(chunk: string): void
}

/** Creates an {@link SseParser} that calls `onMessage` for every dispatched event. */
export function createSseParser(onMessage: (message: SseMessage) => void): SseParser {
  let buffer = ''
  let first = true
  let skipLf = false
  let data: string[] = []
  let event: string | undefined
  let id: string | undefined

  const line = (text: string): void => {
    if (text === '') {
      if (data.length > 0) onMessage({ data: data.join('\n'), event, id })
      data = []
      event = undefined
      id = undefined
      return
    }
    if (text.startsWith(':')) return
    const colon = text.indexOf(':')
    const field = colon === -1 ? text : text.slice(0, colon)
    let value = colon === -1 ? '' : text.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') data.push(value)
    else if (field === 'event') event = value
    else if (field === 'id' && !value.includes('\0')) id = value
  }

  return {
    feed(chunk: string): void {
      let text = chunk
      if (first && text.length > 0) {
        first = false
        if (text.startsWith('\uFEFF')) text = text.slice(1)
      }
      if (skipLf && text.startsWith('\n')) text = text.slice(1)
      skipLf = false
      buffer += text
      let start = 0
      for (let i = 0; i < buffer.length; i++) {
        const c = buffer[i]
        if (c !== '\n' && c !== '\r') continue
        line(buffer.slice(start, i))
        if (c === '\r') {
          if (i + 1 < buffer.length) {
            if (buffer[i + 1] === '\n') i++
          } else {
            skipLf = true
          }
        }
        start = i + 1
      }
      buffer = buffer.slice(start)
    },
  }
}
