/**
 * The example's data: a few hundred labelled customer-support tickets (JSONL, one per line) that
 * the task app classifies into one of five queues.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ExampleError } from './errors'

/** The classes, in the order the baseline breaks ties. */
export const LABELS = ['billing', 'shipping', 'technical', 'account', 'feedback'] as const

/** One class of {@link LABELS}. */
export type Label = (typeof LABELS)[number]

/** The dataset splits, in file order. */
export const SPLITS = ['train', 'validation', 'test'] as const

/** One split of {@link SPLITS}. */
export type Split = (typeof SPLITS)[number]

/** One labelled ticket, as stored in `data/tickets.jsonl`. */
export interface Ticket {
  /** Stable id, `tkt-0001` ... */
  readonly id: string
  readonly split: Split
  /** What the customer wrote. */
  readonly text: string
  /** The gold queue. */
  readonly label: Label
}

/** Absolute path of the committed data file. */
export const DEFAULT_DATA_PATH: string = fileURLToPath(new URL('../data/tickets.jsonl', import.meta.url))

/** Is `value` one of {@link LABELS}? */
export function isLabel(value: unknown): value is Label {
  return typeof value === 'string' && (LABELS as readonly string[]).includes(value)
}

/** Is `value` one of {@link SPLITS}? */
export function isSplit(value: unknown): value is Split {
  return typeof value === 'string' && (SPLITS as readonly string[]).includes(value)
}

/** Parses the JSONL text of a data file; throws `TASKAPP_ERR_EXAMPLE_DATA_INVALID` naming the line. */
export function parseTickets(text: string, source = 'tickets.jsonl'): Ticket[] {
  const tickets: Ticket[] = []
  const ids = new Set<string>()
  const lines = text.split('\n')
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue
    const where = `${source}:${index + 1}`
    let row: unknown
    try {
      row = JSON.parse(line)
    } catch (cause) {
      throw new ExampleError(
        'TASKAPP_ERR_EXAMPLE_DATA_INVALID',
        `${where} is not valid JSON; fix or regenerate the file.`,
        {
          cause,
        },
      )
    }
    const r = row as Partial<Record<keyof Ticket, unknown>> | null
    if (
      r === null ||
      typeof r !== 'object' ||
      typeof r.id !== 'string' ||
      typeof r.text !== 'string' ||
      r.text.trim() === '' ||
      !isSplit(r.split) ||
      !isLabel(r.label)
    ) {
      throw new ExampleError(
        'TASKAPP_ERR_EXAMPLE_DATA_INVALID',
        `${where} must be {"id": string, "split": ${SPLITS.join('|')}, "text": non-empty string, "label": ${LABELS.join('|')}}.`,
      )
    }
    if (ids.has(r.id)) {
      throw new ExampleError(
        'TASKAPP_ERR_EXAMPLE_DATA_INVALID',
        `${where} repeats the id ${r.id}; ids must be unique.`,
      )
    }
    ids.add(r.id)
    tickets.push({ id: r.id, split: r.split, text: r.text, label: r.label })
  }
  if (tickets.length === 0) {
    throw new ExampleError('TASKAPP_ERR_EXAMPLE_DATA_INVALID', `${source} holds no tickets.`)
  }
  return tickets
}

/**
 * The tickets, grouped by split, with the seed → ticket mapping the task app uses.
 *
 * @example
 * const dataset = loadDataset()
 * dataset.exampleForSeed(7, 'test') // the 8th ticket of the test split
 */
export class Dataset {
  readonly tickets: readonly Ticket[]
  readonly #bySplit: Map<Split, Ticket[]>

  constructor(tickets: readonly Ticket[]) {
    this.tickets = tickets
    this.#bySplit = new Map(SPLITS.map((s) => [s, tickets.filter((t) => t.split === s)]))
  }

  /** Number of tickets per split. */
  sizes(): Record<Split, number> {
    return {
      train: this.split('train').length,
      validation: this.split('validation').length,
      test: this.split('test').length,
    }
  }

  /** The tickets of one split, in file order. Throws `TASKAPP_ERR_EXAMPLE_UNKNOWN_SPLIT`. */
  split(name: string): readonly Ticket[] {
    if (!isSplit(name)) {
      throw new ExampleError(
        'TASKAPP_ERR_EXAMPLE_UNKNOWN_SPLIT',
        `Unknown split "${name}"; use one of ${SPLITS.join(', ')}.`,
      )
    }
    return this.#bySplit.get(name) ?? []
  }

  /**
   * The ticket a seed selects: index `seed mod size` of the split (negative seeds wrap too), so
   * any integer seed is valid and the same seed always gives the same ticket.
   */
  exampleForSeed(seed: number, split: string = 'train'): Ticket {
    const rows = this.split(split)
    if (!Number.isSafeInteger(seed)) {
      throw new ExampleError(
        'TASKAPP_ERR_EXAMPLE_DATA_INVALID',
        `Seed must be an integer, got ${String(seed)}.`,
      )
    }
    if (rows.length === 0) {
      throw new ExampleError(
        'TASKAPP_ERR_EXAMPLE_UNKNOWN_SPLIT',
        `Split "${split}" is empty in this data file.`,
      )
    }
    const index = ((seed % rows.length) + rows.length) % rows.length
    return rows[index] as Ticket
  }
}

/** Reads and validates a data file (default: the committed `data/tickets.jsonl`). */
export function loadDataset(path: string = DEFAULT_DATA_PATH): Dataset {
  return new Dataset(parseTickets(readFileSync(path, 'utf8'), path))
}
