import { describe, expect, it } from 'vitest'
import { loadDataset } from './dataset'
import { keywordPolicy } from './policies'
import { runClassificationRollout, scorePrediction } from './rollout'
import { chatReply, startFakeChatServer } from './test-helpers'

const dataset = loadDataset()

describe('scorePrediction', () => {
  it.each([
    [{ label: 'billing', raw: '' }, 'billing', 1],
    [{ label: 'shipping', raw: '' }, 'billing', 0],
    [{ label: null, raw: '' }, 'billing', 0],
  ] as const)('%j vs %s → %i', (prediction, gold, reward) => {
    expect(scorePrediction(prediction, gold)).toEqual({ reward, correct: reward === 1 })
  })
})

describe('runClassificationRollout', () => {
  it('runs the baseline on the ticket the seed selects and scores it', async () => {
    const ticket = dataset.exampleForSeed(12, 'test')
    const expected = await keywordPolicy().classify(ticket.text)
    const response = await runClassificationRollout(
      {
        trace_correlation_id: 'trace-12',
        env: { seed: 12, config: { split: 'test' } },
        policy: { policy_name: 'baseline' },
      },
      { dataset },
    )
    expect(response.trace_correlation_id).toBe('trace-12')
    expect(response.reward_info.details).toMatchObject({
      example_id: ticket.id,
      split: 'test',
      seed: 12,
      expected: ticket.label,
      predicted: expected.label,
      policy: 'keyword-baseline',
    })
    expect(response.reward_info.outcome_reward).toBe(expected.label === ticket.label ? 1 : 0)
    expect(response.reward_info.outcome_objectives.reward).toBe(response.reward_info.outcome_reward)
    expect(response.trace.messages[0]).toEqual({ role: 'user', content: ticket.text })
  })

  it('scores every test ticket, with a mean equal to the baseline accuracy', async () => {
    const test = dataset.split('test')
    let sum = 0
    let correct = 0
    for (let seed = 0; seed < test.length; seed++) {
      const r = await runClassificationRollout(
        { trace_correlation_id: `t${seed}`, env: { seed, config: { split: 'test' } } },
        { dataset },
      )
      sum += r.reward_info.outcome_reward
      if ((await keywordPolicy().classify(test[seed]!.text)).label === test[seed]!.label) correct++
    }
    expect(sum).toBe(correct)
  })

  it('uses the chat policy when the request gives an inference_url (local fake server)', async () => {
    // A tiny fake OpenAI-compatible server on 127.0.0.1: it answers the gold label of the ticket.
    const ticket = dataset.exampleForSeed(5, 'validation')
    await using server = await startFakeChatServer(() => chatReply(ticket.label))
    const response = await runClassificationRollout(
      {
        trace_correlation_id: 'chat-5',
        env: { seed: 5, config: { split: 'validation' } },
        policy: { policy_name: 'chat', config: { inference_url: server.url, model: 'fake' } },
      },
      { dataset },
    )
    expect(response.reward_info.outcome_reward).toBe(1)
    expect(response.reward_info.details.policy).toBe('chat:fake')
    expect(response.inference_url).toBe(server.url)
    expect(server.requests[0]!.body.messages?.[1]?.content).toBe(ticket.text)
  })

  it('defaults to seed 0 of the train split', async () => {
    const response = await runClassificationRollout({ trace_correlation_id: 'x' }, { dataset })
    expect(response.reward_info.details.example_id).toBe(dataset.split('train')[0]!.id)
  })

  it('rejects an unknown split with TASKAPP_ERR_EXAMPLE_UNKNOWN_SPLIT', async () => {
    await expect(
      runClassificationRollout({ trace_correlation_id: 'x', env: { config: { split: 'dev' } } }, { dataset }),
    ).rejects.toMatchObject({ code: 'TASKAPP_ERR_EXAMPLE_UNKNOWN_SPLIT' })
  })
})
