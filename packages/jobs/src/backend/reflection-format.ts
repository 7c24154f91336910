/**
 * The reflection request of the optimizer: the text it sends the upstream model to ask for a
 * better prompt (current prompt, examples with their inputs, answers, rewards and feedback), and
 * the parser the deterministic model uses to read it back. The first line is a marker, so a model
 * server can tell a reflection from a task request.
 */

/** First line of every reflection request. */
export const REFLECTION_MARKER = '[taskapp-gepa:reflection]'

/** The system message of a reflection request. */
export const REFLECTION_SYSTEM_PROMPT =
  'You are an expert prompt engineer. You improve the system prompt of an AI task from examples of how it did.'

/** One example shown to the reflecting model. */
export interface ReflectionExample {
  /** What the task sent the model (the non-system messages of the intercepted call). */
  readonly input: string
  /** What the model answered. */
  readonly output: string
  /** The rollout's `outcome_reward`. */
  readonly reward: number
  /** What the task app said about the rollout (`reward_info.details` as JSON, `status_detail`). */
  readonly feedback: string
}

/** A parsed reflection request. */
export interface ParsedReflection {
  readonly currentPrompt: string
  readonly examples: readonly ReflectionExample[]
}

const INSTRUCTIONS = [
  'Below are the current system prompt of a task and examples the task ran with it: the input the',
  'task sent to the model, the model answer, the reward (1 is best) and the task feedback.',
  'Write an improved system prompt that fixes the failed examples without breaking the others.',
  'Keep the task instructions and its answer format. Reply with the complete new system prompt only.',
].join('\n')

/**
 * The user message of a reflection request.
 *
 * @example
 * formatReflection('Answer with one word.', [{ input: 'Where is my parcel?', output: 'billing', reward: 0, feedback: '{"expected":"shipping"}' }])
 */
export function formatReflection(currentPrompt: string, examples: readonly ReflectionExample[]): string {
  const parts = [REFLECTION_MARKER, INSTRUCTIONS, '', `<current_prompt>\n${currentPrompt}\n</current_prompt>`]
  examples.forEach((e, i) => {
    parts.push(
      '',
      `<example index="${i + 1}" reward="${e.reward}">`,
      `<input>\n${e.input}\n</input>`,
      `<output>\n${e.output}\n</output>`,
      `<feedback>\n${e.feedback}\n</feedback>`,
      '</example>',
    )
  })
  return parts.join('\n')
}

function tag(block: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>\\n?([\\s\\S]*?)\\n?</${name}>`).exec(block)
  return m?.[1]
}

/** Reads back a reflection request; `undefined` when `text` does not start with the marker. */
export function parseReflection(text: string): ParsedReflection | undefined {
  if (!text.trimStart().startsWith(REFLECTION_MARKER)) return undefined
  const currentPrompt = tag(text, 'current_prompt') ?? ''
  const examples: ReflectionExample[] = []
  for (const m of text.matchAll(/<example index="\d+" reward="([^"]*)">([\s\S]*?)<\/example>/g)) {
    const body = m[2] as string
    examples.push({
      reward: Number(m[1]),
      input: tag(body, 'input') ?? '',
      output: tag(body, 'output') ?? '',
      feedback: tag(body, 'feedback') ?? '',
    })
  }
  return { currentPrompt, examples }
}

const EXPECTED_KEYS = [
  'expected',
  'expected_label',
  'expected_answer',
  'gold',
  'gold_label',
  'label',
  'target',
]

/**
 * The expected answer a feedback text names: the first of `expected`, `expected_label`, ... in
 * its JSON (top level or under `details`), else an `expected: X` phrase.
 */
export function expectedFromFeedback(feedback: string): string | undefined {
  try {
    const json = JSON.parse(feedback) as unknown
    for (const scope of [json, (json as { details?: unknown } | null)?.details]) {
      if (typeof scope !== 'object' || scope === null) continue
      for (const key of EXPECTED_KEYS) {
        const value = (scope as Record<string, unknown>)[key]
        if (typeof value === 'string' && value !== '') return value
      }
    }
  } catch {
    // not JSON: try the phrase below
  }
  return /expected[^:\n]*:\s*"?([\w-]+)/i.exec(feedback)?.[1]
}
