import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { DEFAULT_DATA_PATH, Dataset, LABELS, loadDataset, parseTickets } from './dataset'
import { ExampleError } from './errors'
import { SPLIT_SIZES, generateTickets, serializeTickets } from './generate-data'

describe('data file', () => {
  it('is exactly what the committed generator writes', () => {
    expect(readFileSync(DEFAULT_DATA_PATH, 'utf8')).toBe(serializeTickets(generateTickets()))
  })

  it('holds a few hundred tickets with every label in every split', () => {
    const dataset = loadDataset()
    expect(dataset.tickets.length).toBe(300)
    expect(dataset.sizes()).toEqual(SPLIT_SIZES)
    for (const split of ['train', 'validation', 'test'] as const) {
      const labels = new Set(dataset.split(split).map((t) => t.label))
      expect([...labels].sort()).toEqual([...LABELS].sort())
    }
    expect(new Set(dataset.tickets.map((t) => t.id)).size).toBe(300)
  })

  it('changes with the seed (the generator really is seeded)', () => {
    expect(serializeTickets(generateTickets(1))).not.toBe(serializeTickets(generateTickets(2)))
  })
})

describe('Dataset.exampleForSeed', () => {
  const dataset = loadDataset()

  it('maps a seed to index seed mod size, wrapping negatives', () => {
    const test = dataset.split('test')
    expect(dataset.exampleForSeed(0, 'test')).toBe(test[0])
    expect(dataset.exampleForSeed(7, 'test')).toBe(test[7])
    expect(dataset.exampleForSeed(test.length + 7, 'test')).toBe(test[7])
    expect(dataset.exampleForSeed(-1, 'test')).toBe(test[test.length - 1])
  })

  it('defaults to the train split', () => {
    expect(dataset.exampleForSeed(3)).toBe(dataset.split('train')[3])
  })
})

describe('errors', () => {
  const dataset = new Dataset([{ id: 'a', split: 'train', text: 'x', label: 'billing' }])
  const cases: { name: string; run: () => unknown; code: string; message: RegExp }[] = [
    {
      name: 'bad JSON line',
      run: () => parseTickets('{"id":'),
      code: 'TASKAPP_ERR_EXAMPLE_DATA_INVALID',
      message: /:1 is not valid JSON/,
    },
    {
      name: 'unknown label',
      run: () => parseTickets('{"id":"a","split":"train","text":"x","label":"spam"}'),
      code: 'TASKAPP_ERR_EXAMPLE_DATA_INVALID',
      message: /"label": billing\|shipping/,
    },
    {
      name: 'duplicate id',
      run: () =>
        parseTickets(
          '{"id":"a","split":"train","text":"x","label":"billing"}\n{"id":"a","split":"test","text":"y","label":"billing"}',
        ),
      code: 'TASKAPP_ERR_EXAMPLE_DATA_INVALID',
      message: /:2 repeats the id a/,
    },
    {
      name: 'empty file',
      run: () => parseTickets('\n'),
      code: 'TASKAPP_ERR_EXAMPLE_DATA_INVALID',
      message: /holds no tickets/,
    },
    {
      name: 'unknown split',
      run: () => dataset.split('dev'),
      code: 'TASKAPP_ERR_EXAMPLE_UNKNOWN_SPLIT',
      message: /use one of train/,
    },
    {
      name: 'empty split',
      run: () => dataset.exampleForSeed(0, 'test'),
      code: 'TASKAPP_ERR_EXAMPLE_UNKNOWN_SPLIT',
      message: /is empty/,
    },
    {
      name: 'non-integer seed',
      run: () => dataset.exampleForSeed(1.5),
      code: 'TASKAPP_ERR_EXAMPLE_DATA_INVALID',
      message: /integer/,
    },
  ]
  it.each(cases)('$name → $code', ({ run, code, message }) => {
    let caught: unknown
    try {
      run()
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(ExampleError)
    expect((caught as ExampleError).code).toBe(code)
    expect((caught as ExampleError).name).toBe('ExampleError')
    expect((caught as ExampleError).message).toMatch(message)
  })
})
