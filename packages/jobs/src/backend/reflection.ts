/**
 * GEPA's mutation: ask the upstream model to rewrite the parent's prompt given the minibatch
 * examples (failed ones first) with their inputs, answers, rewards and the task app's feedback.
 */
import { JobsError } from '../errors'
import type { RolloutRecord } from './evaluate'
import { formatReflection, REFLECTION_SYSTEM_PROMPT } from './reflection-format'
import { postChat, replyContent, replyUsage, UpstreamUnreachable, type UpstreamOptions } from './upstream'
import type { UsageWire } from './wire-shapes'

/** Most examples shown in one reflection. */
export const MAX_REFLECTION_EXAMPLES = 8

function reflectionFailed(message: string, cause?: unknown): JobsError {
  return new JobsError('TASKAPP_ERR_JOBS_REFLECTION_FAILED', message, cause === undefined ? {} : { cause })
}

/** `text` cut to `max` characters, marked when cut. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)} [...]`
}

/** The reply text without a surrounding code fence. */
function unfence(text: string): string {
  const fenced = /^\s*```[\w-]*\n([\s\S]*?)\n```\s*$/.exec(text)
  return (fenced?.[1] ?? text).trim()
}

/**
 * Asks `upstream` (model `model`) for an improved prompt. Returns the new prompt text.
 *
 * @throws {@link JobsError} `TASKAPP_ERR_JOBS_REFLECTION_FAILED` when the upstream model cannot be
 * reached, answers an error, or answers no text.
 */
export async function proposePrompt(options: {
  upstream: UpstreamOptions
  model: string
  parentText: string
  records: readonly RolloutRecord[]
  usage: UsageWire
  signal: AbortSignal
}): Promise<string> {
  const { upstream, model, parentText, records, usage, signal } = options
  const shown = [...records]
    .sort((a, b) => a.reward - b.reward)
    .slice(0, MAX_REFLECTION_EXAMPLES)
    .map((r) => ({
      input: clip(r.input, 4000),
      output: clip(r.output, 2000),
      reward: r.reward,
      feedback: clip(r.feedback, 2000),
    }))
  const body = {
    model,
    temperature: 0.7,
    messages: [
      { role: 'system', content: REFLECTION_SYSTEM_PROMPT },
      { role: 'user', content: formatReflection(parentText, shown) },
    ],
  }
  let response: Response
  try {
    response = await postChat(upstream, body, signal)
  } catch (error) {
    if (error instanceof UpstreamUnreachable)
      throw reflectionFailed(`Reflection failed: ${error.message}`, error)
    throw error
  }
  const text = await response.text()
  if (!response.ok) {
    throw reflectionFailed(
      `Reflection failed: the upstream model answered HTTP ${response.status}: ${text.slice(0, 300)}; check upstream.baseUrl, the key and the model name.`,
    )
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (cause) {
    throw reflectionFailed(
      'Reflection failed: the upstream model answered something that is not JSON.',
      cause,
    )
  }
  const u = replyUsage(json)
  usage.calls += 1
  usage.prompt_tokens += u.prompt
  usage.completion_tokens += u.completion
  usage.total_tokens += u.total
  const content = replyContent(json)
  if (content === undefined || unfence(content) === '') {
    throw reflectionFailed(
      'Reflection failed: the upstream model answered without text in choices[0].message.content.',
    )
  }
  return unfence(content)
}
