/**
 * The rule language of the deterministic model: a prompt line `If the ticket mentions "refund",
 * answer "billing".` is a rule; `Otherwise answer "feedback".` or a label list (`one of: billing,
 * shipping, ...`) gives the default. The model answers a task by applying the rules, and answers a
 * reflection by deriving one new rule from the failed examples it was shown.
 */

/** One rule of a prompt: when the input mentions `keyword`, answer `label`. */
export interface PromptRule {
  readonly keyword: string
  readonly label: string
}

/** One example of a reflection request, as the deterministic model reads it. */
export interface RuleExample {
  /** The input the task sent to the model. */
  readonly input: string
  /** The label the task expected, when its feedback names one. */
  readonly expected?: string
  /** Whether the example failed (reward below 1). */
  readonly failed: boolean
}

const RULE_LINE =
  /^\s*(?:[-*]\s*)?if the [a-z][a-z ]{0,40}? (?:mentions|contains|says) "([^"\n]+)",? (?:then )?answer "([^"\n]+)"\.?\s*$/gim
const OTHERWISE = /otherwise,? answer "([^"\n]+)"/i
const ONE_OF = /one of:\s*([^\n]+)/i

/**
 * Function words never used as rule keywords: they say nothing about the label. Four letters or
 * more only, since shorter words are skipped anyway.
 */
const STOPWORDS = new Set(
  `about above after again against also because been before being below between both could does
  doing down during each every from further have having here hers herself himself into itself just
  more most much must myself need needs never nothing once only other ours over please same should
  since some something still such than that their theirs them themselves then there these they this
  those through under until very want wanted were what when where which while will with would your
  yours yourself already even ever anything someone cannot`
    .split(/\s+/)
    .filter((w) => w !== ''),
)

/** The rules written in `prompt`, in order. */
export function parseRules(prompt: string): PromptRule[] {
  return [...prompt.matchAll(RULE_LINE)].map((m) => ({
    keyword: (m[1] as string).trim(),
    label: (m[2] as string).trim(),
  }))
}

/** The answer when no rule fires: `Otherwise answer "X".`, else the first label of `one of: a, b`. */
export function defaultLabel(prompt: string): string | undefined {
  const otherwise = OTHERWISE.exec(prompt)
  if (otherwise !== null) return (otherwise[1] as string).trim()
  const list = ONE_OF.exec(prompt)
  if (list === null) return undefined
  const first = (list[1] as string)
    .split(/,|\bor\b/)[0]
    ?.replace(/[."'`]/g, '')
    .trim()
  return first === undefined || first === '' ? undefined : first
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** Whether `input` contains `keyword` as whole word(s), ignoring case. */
export function mentions(input: string, keyword: string): boolean {
  return new RegExp(`(?:^|[^a-z0-9])${escapeRegExp(keyword.toLowerCase())}(?:$|[^a-z0-9])`).test(
    input.toLowerCase(),
  )
}

/**
 * Answers `input` under `prompt`: the label of the first rule whose keyword the input mentions,
 * else the default label, else `unknown`.
 *
 * @example
 * applyRules('If the ticket mentions "parcel", answer "shipping".', 'Where is my parcel?') // 'shipping'
 */
export function applyRules(prompt: string, input: string): string {
  for (const rule of parseRules(prompt)) if (mentions(input, rule.keyword)) return rule.label
  return defaultLabel(prompt) ?? 'unknown'
}

/** The text of a rule line. */
export function formatRule(rule: PromptRule): string {
  return `If the input mentions "${rule.keyword}", answer "${rule.label}".`
}

/** The candidate keywords of a text: lower-case words of four letters or more, no function words. */
export function keywordsOf(text: string): string[] {
  const words = text.toLowerCase().match(/[a-z][a-z0-9]*(?:-[a-z0-9]+)*/g) ?? []
  return [...new Set(words.filter((w) => w.length >= 4 && !STOPWORDS.has(w)))]
}

/**
 * Derives one new rule from a reflection's examples: the keyword that occurs in the most failed
 * examples of one expected label, minus the examples of other labels it also occurs in; ties go to
 * the earliest word of the earliest failed example. Keywords that already have a rule are skipped.
 * `undefined` when no failed example names its expected label or no keyword scores above zero.
 */
export function deriveRule(
  examples: readonly RuleExample[],
  existing: readonly PromptRule[],
): PromptRule | undefined {
  const taken = new Set(existing.map((r) => r.keyword.toLowerCase()))
  const labelled = examples.filter((e) => e.expected !== undefined)
  let best: { rule: PromptRule; score: number } | undefined
  for (const failed of labelled.filter((e) => e.failed)) {
    const label = failed.expected as string
    for (const keyword of keywordsOf(failed.input)) {
      if (taken.has(keyword)) continue
      let score = 0
      for (const other of labelled) {
        if (!mentions(other.input, keyword)) continue
        if (other.expected !== label) score -= 1
        else if (other.failed) score += 1
      }
      if (score > 0 && (best === undefined || score > best.score)) best = { rule: { keyword, label }, score }
    }
  }
  return best?.rule
}
