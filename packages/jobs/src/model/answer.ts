/**
 * What the deterministic model answers to one chat request: a task answer from the rules in the
 * system prompt, or, for a reflection request, the current prompt plus one new rule.
 */
import { expectedFromFeedback, parseReflection } from '../backend/reflection-format'
import { applyRules, deriveRule, formatRule, parseRules } from './rules'

/** One chat message as the model reads it. */
export interface ChatMessage {
  readonly role: string
  readonly content: string
}

/** The model's answer and which kind of request it was. */
export interface ModelAnswer {
  readonly kind: 'task' | 'reflection'
  readonly content: string
}

/** The text of a message `content`: a string, or the text parts of an array. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) return ''
  return content
    .map((part: unknown) =>
      typeof part === 'object' && part !== null && typeof (part as { text?: unknown }).text === 'string'
        ? (part as { text: string }).text
        : '',
    )
    .join('')
}

/**
 * The answer to a reflection: the current prompt with one rule appended, drawn from the failed
 * examples; the prompt unchanged when no rule can be drawn.
 */
function reflect(text: string): string | undefined {
  const parsed = parseReflection(text)
  if (parsed === undefined) return undefined
  const examples = parsed.examples.map((e) => {
    const expected = expectedFromFeedback(e.feedback)
    return { input: e.input, failed: !(e.reward >= 1), ...(expected !== undefined && { expected }) }
  })
  const rule = deriveRule(examples, parseRules(parsed.currentPrompt))
  const prompt = parsed.currentPrompt.trimEnd()
  return rule === undefined ? prompt : `${prompt}\n${formatRule(rule)}`
}

/**
 * Answers a chat: a reflection request (a message starting with the reflection marker) gets the
 * improved prompt; any other request gets the label the system prompt's rules give for the last
 * user message.
 *
 * @example
 * answerChat([{ role: 'system', content: 'Answer one of: billing, shipping.' }, { role: 'user', content: 'parcel?' }])
 * // { kind: 'task', content: 'billing' }
 */
export function answerChat(messages: readonly ChatMessage[]): ModelAnswer {
  for (const message of messages) {
    const improved = reflect(message.content)
    if (improved !== undefined) return { kind: 'reflection', content: improved }
  }
  const system = messages
    .filter((m) => m.role === 'system' || m.role === 'developer')
    .map((m) => m.content)
    .join('\n')
  const input = [...messages].reverse().find((m) => m.role === 'user')?.content ?? ''
  return { kind: 'task', content: applyRules(system, input) }
}
