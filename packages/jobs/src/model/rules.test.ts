/**
 * The deterministic model's rule language: applying rules to an input, and drawing one new rule
 * from a reflection's failed examples.
 */
import { describe, expect, it } from 'vitest'
import { expectedFromFeedback, formatReflection, parseReflection } from '../backend/reflection-format'
import { answerChat } from './answer'
import { applyRules, defaultLabel, deriveRule, formatRule, keywordsOf, parseRules } from './rules'

const BASE =
  'You route customer-support tickets to a queue. Answer with exactly one word, one of: billing, shipping, technical, account, feedback.'

describe('applyRules', () => {
  it('answers the first rule whose keyword the input mentions, as a whole word, ignoring case', () => {
    const prompt = `${BASE}\nIf the input mentions "parcel", answer "shipping".\nIf the ticket mentions "password", answer "account".`
    expect(applyRules(prompt, 'Where is my PARCEL?')).toBe('shipping')
    expect(applyRules(prompt, 'I forgot my password and my parcel')).toBe('shipping')
    expect(applyRules(prompt, 'reset password please')).toBe('account')
    expect(applyRules(prompt, 'parcels everywhere')).toBe('billing')
  })

  it('falls back to "Otherwise answer", then to the first label of "one of:", then to unknown', () => {
    expect(defaultLabel(BASE)).toBe('billing')
    expect(applyRules(`${BASE}\nOtherwise answer "feedback".`, 'hello')).toBe('feedback')
    expect(applyRules('Answer one of: "beta" or "alpha".', 'x')).toBe('beta')
    expect(applyRules('No labels here.', 'x')).toBe('unknown')
  })

  it('reads back the rules it writes', () => {
    const rule = { keyword: 'two-factor', label: 'account' }
    expect(parseRules(`${BASE}\n${formatRule(rule)}`)).toEqual([rule])
    expect(applyRules(formatRule(rule), 'Turn on two-factor now')).toBe('account')
  })
})

describe('deriveRule', () => {
  it('picks the keyword of most failed examples of one label, penalised by other labels', () => {
    const rule = deriveRule(
      [
        { input: 'My parcel never arrived', expected: 'shipping', failed: true },
        { input: 'The parcel tracking is stuck', expected: 'shipping', failed: true },
        { input: 'Tracking my refund', expected: 'billing', failed: false },
      ],
      [],
    )
    expect(rule).toEqual({ keyword: 'parcel', label: 'shipping' })
  })

  it('skips keywords that already have a rule, function words and short words', () => {
    expect(keywordsOf('Where is my stuff? I would like it now')).toEqual(['stuff', 'like'])
    const rule = deriveRule(
      [{ input: 'Where is my parcel now', expected: 'shipping', failed: true }],
      [{ keyword: 'parcel', label: 'shipping' }],
    )
    expect(rule).toBeUndefined()
  })

  it('draws nothing without failed examples that name an expected label', () => {
    expect(deriveRule([{ input: 'My parcel', failed: true }], [])).toBeUndefined()
    expect(deriveRule([{ input: 'My parcel', expected: 'shipping', failed: false }], [])).toBeUndefined()
  })
})

describe('reflection requests', () => {
  it('round-trip through the format and get the prompt plus one rule', () => {
    const text = formatReflection(BASE, [
      {
        input: 'Tracking says delivered but there is no parcel',
        output: 'billing',
        reward: 0,
        feedback: '{"expected":"shipping","predicted":"billing"}',
      },
      { input: 'I was charged twice', output: 'billing', reward: 1, feedback: '{"expected":"billing"}' },
    ])
    const parsed = parseReflection(text)
    expect(parsed?.currentPrompt).toBe(BASE)
    expect(parsed?.examples.map((e) => e.reward)).toEqual([0, 1])
    const answer = answerChat([
      { role: 'system', content: 'You are a prompt engineer.' },
      { role: 'user', content: text },
    ])
    expect(answer).toEqual({
      kind: 'reflection',
      content: `${BASE}\nIf the input mentions "tracking", answer "shipping".`,
    })
  })

  it('finds the expected label in JSON feedback, nested details, or prose', () => {
    expect(expectedFromFeedback('{"expected":"shipping"}')).toBe('shipping')
    expect(expectedFromFeedback('{"details":{"gold_label":"account"}}')).toBe('account')
    expect(expectedFromFeedback('wrong; expected label: feedback')).toBe('feedback')
    expect(expectedFromFeedback('no idea')).toBeUndefined()
  })

  it('a task request is answered from the system prompt rules', () => {
    const answer = answerChat([
      { role: 'system', content: `${BASE}\nIf the input mentions "crash", answer "technical".` },
      { role: 'user', content: 'The app will crash on start' },
    ])
    expect(answer).toEqual({ kind: 'task', content: 'technical' })
    expect(parseReflection('not a reflection')).toBeUndefined()
  })
})
