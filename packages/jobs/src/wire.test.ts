/** The pure wire helpers, against the vocabulary of the reference (§2.1 status, §2.4 events, §2.5 prompts). */
import { describe, expect, it } from 'vitest'
import { eventCategory, isSynthTunnelUrl, normalizeStatus, promptTextOf, terminalStatusOf } from './wire'

describe('normalizeStatus', () => {
  it.each([
    ['running', 'running'],
    ['QUEUED', 'queued'],
    ['canceled', 'cancelled'],
    ['completed', 'succeeded'],
    ['success', 'succeeded'],
    ['error', 'failed'],
    ['in_progress', 'running'],
    ['something-new', 'pending'],
    [undefined, 'pending'],
  ])('%s → %s', (raw, status) => expect(normalizeStatus(raw)).toBe(status))
})

describe('terminalStatusOf', () => {
  it.each([
    ['learning.policy.gepa.job.completed', 'succeeded'],
    ['learning.policy.mipro.job.failed', 'failed'],
    ['learning.policy.gepa.job.canceled', 'cancelled'],
    ['learning.policy.gepa.job.paused', 'paused'],
    ['Job_Completed', 'succeeded'],
    ['prompt.learning.job_failed', 'failed'],
    ['learning.policy.gepa.generation.completed', undefined],
    ['learning.policy.gepa.job.started', undefined],
  ])('%s → %s', (type, status) => expect(terminalStatusOf(type)).toBe(status))
})

describe('eventCategory', () => {
  it.each([
    ['learning.policy.gepa.generation.started', 'generation'],
    ['learning.policy.gepa.baseline', 'baseline'],
    ['learning.policy.gepa.candidate.new_best', 'candidate'],
    ['learning.policy.mipro.proposal.scored', 'candidate'],
    ['learning.policy.gepa.frontier_updated', 'frontier'],
    ['learning.policy.mipro.trial.started', 'progress'],
    ['learning.policy.gepa.job.failed', 'termination'],
    ['learning.policy.gepa.validation.completed', 'validation'],
    ['learning.policy.gepa.job.completed', 'complete'],
    ['learning.policy.gepa.billing.charged', 'other'],
  ])('%s → %s', (type, category) => expect(eventCategory(type)).toBe(category))
})

describe('promptTextOf', () => {
  it('reads system_prompt, instruction, stages.main.instruction, messages[role=system], or a string', () => {
    expect(promptTextOf('plain')).toBe('plain')
    expect(promptTextOf({ system_prompt: 'a', instruction: 'b' })).toBe('a')
    expect(promptTextOf({ instruction: 'b' })).toBe('b')
    expect(promptTextOf({ stages: { main: { instruction: 'c' } } })).toBe('c')
    expect(
      promptTextOf({
        messages: [
          { role: 'user', pattern: 'u' },
          { role: 'system', pattern: 'd' },
        ],
      }),
    ).toBe('d')
    expect(promptTextOf({ messages: [{ role: 'system', content: 'e' }] })).toBe('e')
    expect(promptTextOf({ other: 1 })).toBeUndefined()
    expect(promptTextOf(null)).toBeUndefined()
  })
})

describe('isSynthTunnelUrl', () => {
  it.each([
    ['https://st.usesynth.ai/s/rt_abc123', true],
    ['http://127.0.0.1:8787/s/rt_token/rollout', true],
    ['https://relay.example.com/s/rt_x', true],
    ['https://st.usesynth.ai/other/path', false],
    ['http://127.0.0.1:8114', false],
    ['ftp://host/s/rt_x', false],
    ['not a url', false],
  ])('%s → %s', (url, expected) => expect(isSynthTunnelUrl(url)).toBe(expected))
})
