/**
 * Matching the messages of an intercepted chat request against the job's `initial_prompt`
 * patterns, and swapping the candidate's text in for the message GEPA optimizes.
 *
 * A pattern matches a message of the same role whose text equals it, whitespace runs counting as
 * equal and `{wildcard}` standing for any text; the wildcard values found carry over into the
 * candidate's text wherever it names the same `{wildcard}`.
 */
import type { PromptMessage } from './job-config'

/** A pattern compiled for matching. */
export interface CompiledPattern {
  readonly role: string
  readonly regex: RegExp
  readonly names: readonly string[]
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** Compiles one pattern; only names listed in `wildcards` are wildcards, other braces are text. */
export function compilePattern(message: PromptMessage, wildcards: readonly string[]): CompiledPattern {
  const names: string[] = []
  const parts = message.pattern.trim().split(/(\{\w+\})/)
  const source = parts
    .map((part) => {
      const name = /^\{(\w+)\}$/.exec(part)?.[1]
      if (name !== undefined && wildcards.includes(name)) {
        if (names.includes(name)) return `\\k<${name}>`
        names.push(name)
        return `(?<${name}>[\\s\\S]*?)`
      }
      return escapeRegExp(part).replace(/\s+/g, '\\s+')
    })
    .join('')
  return { role: message.role, regex: new RegExp(`^\\s*${source}\\s*$`), names }
}

/** The wildcard values when `content` matches the pattern, else `undefined`. */
export function matchPattern(
  pattern: CompiledPattern,
  role: string,
  content: string,
): Record<string, string> | undefined {
  if (pattern.role !== role) return undefined
  const m = pattern.regex.exec(content)
  if (m === null) return undefined
  return { ...(m.groups ?? {}) }
}

/** `text` with each `{name}` of `values` replaced by its value. */
export function renderText(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole)
}

/** One chat message of an intercepted request (content may be a string or content parts). */
export interface WireMessage {
  role?: unknown
  content?: unknown
  [key: string]: unknown
}

/** The text of a string content or of the text parts of an array content. */
export function textOf(content: unknown): string | undefined {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return undefined
  const texts = content.map((p: unknown) =>
    typeof p === 'object' && p !== null && typeof (p as { text?: unknown }).text === 'string'
      ? (p as { text: string }).text
      : '',
  )
  return texts.join('')
}

/**
 * Replaces, in `messages`, every message matching the optimized pattern by `candidateText` (with
 * the wildcard values it matched). Returns the new messages and how many were replaced.
 */
export function swapPrompt(
  messages: readonly WireMessage[],
  optimized: CompiledPattern,
  candidateText: string,
): { messages: WireMessage[]; swapped: number } {
  let swapped = 0
  const out = messages.map((message) => {
    const text = textOf(message.content)
    if (typeof message.role !== 'string' || text === undefined) return message
    const values = matchPattern(optimized, message.role, text)
    if (values === undefined) return message
    swapped += 1
    return { ...message, content: renderText(candidateText, values) }
  })
  return { messages: out, swapped }
}
