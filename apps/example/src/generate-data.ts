/**
 * Deterministic generator of the example's data file, `data/tickets.jsonl`.
 *
 * The committed data file is exactly `serializeTickets(generateTickets())`; a test checks it,
 * so the file and this script can never drift apart. Run it again after editing the templates:
 *
 * ```bash
 * pnpm --filter @taskapp/example generate-data
 * ```
 *
 * Nothing is fetched: every ticket is built from the templates below with a seeded PRNG.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { LABELS, type Label, type Split, type Ticket } from './dataset'

/** Seed of the PRNG; changing it reshuffles the whole data set. */
export const GENERATOR_SEED = 20_251_123

/** How many tickets of each label the generator writes (5 labels, 300 tickets). */
export const TICKETS_PER_LABEL = 60

/** Sizes of the splits, in file order: the first 200 rows are `train`, then 50 and 50. */
export const SPLIT_SIZES: Readonly<Record<Split, number>> = { train: 200, validation: 50, test: 50 }

/** mulberry32: a tiny, well-known 32-bit PRNG; deterministic on every platform. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const SLOTS: Record<string, readonly string[]> = {
  product: [
    'headphones',
    'standing desk',
    'coffee grinder',
    'phone case',
    'backpack',
    'desk lamp',
    'blender',
  ],
  amount: ['$12.99', '$49.00', '$7.50', '$129.00', '$23.10', '$310.45'],
  days: ['two', 'three', 'five', 'ten', 'twelve'],
  device: ['iPhone', 'Android phone', 'Windows laptop', 'MacBook', 'iPad', 'Chromebook'],
  month: ['March', 'April', 'June', 'September', 'November'],
  city: ['Lyon', 'Denver', 'Osaka', 'Leeds', 'Porto', 'Austin'],
  feature: ['dark mode', 'bulk export', 'a wishlist', 'gift wrapping', 'saved searches', 'order notes'],
}

/**
 * Templates per label. The first group of each label uses words a keyword rule can catch; the
 * `subtle` group says the same thing without them (or with a misleading word), so the keyword
 * baseline is good but not perfect and a model has room to do better.
 */
const TEMPLATES: Record<Label, { plain: readonly string[]; subtle: readonly string[] }> = {
  billing: {
    plain: [
      'I was charged {amount} twice for the same order, please fix the payment.',
      'My invoice for {month} shows {amount} but the price was lower.',
      'Why did my card get a charge of {amount} after I cancelled the subscription?',
      'Can I get a copy of the invoice for my {product} purchase?',
      'The payment for my {product} failed but the bank still shows {amount} pending.',
      'Please update the billing details on my subscription before the next charge.',
      'I see an unknown charge of {amount} on my credit card statement.',
      'Your checkout applied tax twice, my bill came to {amount}.',
    ],
    subtle: [
      'Money left my account twice for one {product}, what happened?',
      'The amount I paid in {month} does not match what the website said.',
      'I never agreed to a yearly plan, yet {amount} went out this morning.',
    ],
  },
  shipping: {
    plain: [
      'My {product} has not arrived yet, the tracking number shows no update for {days} days.',
      'The package with my {product} was delivered to the wrong address in {city}.',
      'Can you change the delivery address for my order before it ships?',
      'The courier says my parcel is stuck in {city}, when will it arrive?',
      'My order shipped {days} days ago but tracking still says label created.',
      'Is express delivery available to {city} for the {product}?',
      'The delivery driver left my package outside in the rain.',
      'Tracking says delivered but there is no parcel at my door.',
    ],
    subtle: [
      'It has been {days} days and the {product} is still not here.',
      'Where is my stuff? I ordered the {product} in {month}.',
      'The box came open and half of it was missing when it got to {city}.',
    ],
  },
  technical: {
    plain: [
      'The app crashes every time I open the cart on my {device}.',
      'I get an error 500 when I try to check out with my {product}.',
      'The website is very slow and the page keeps loading forever on my {device}.',
      'There is a bug: the search results show the wrong {product} images.',
      'The app freezes after the latest update on my {device}.',
      'Checkout button does nothing, I think the site has a bug.',
      'I see a blank screen and an error code when I open the app on my {device}.',
      'Push notifications stopped working on my {device} after the update.',
    ],
    subtle: [
      'Nothing happens when I tap buy on my {device}, the spinner just turns.',
      'Since yesterday the product photos look broken on my {device}.',
      'My {device} shows the {product} page as garbled text.',
    ],
  },
  account: {
    plain: [
      'I forgot my password and the reset email never comes.',
      'How do I change the email address on my account?',
      'Please delete my account and all my personal data.',
      'I cannot sign in, it says my username does not exist.',
      'Someone changed my account password, I think I was hacked.',
      'How do I turn on two-factor authentication for my profile?',
      'I want to merge my two accounts into one.',
      'My profile still shows my old name after I updated it.',
    ],
    subtle: [
      'I moved to {city} and want my new surname on everything you have about me.',
      'The verification code never reaches my phone so I am locked out.',
      'Please remove everything you store about me under GDPR.',
    ],
  },
  feedback: {
    plain: [
      'I love the new {product}, great quality, thank you!',
      'Feature request: please add {feature} to the app.',
      'Just wanted to say thank you, the support team was great.',
      'I suggest adding {feature}, it would make shopping easier.',
      'Great service, my {product} is excellent.',
      'It would be nice to have {feature} on the {device} app.',
      'The new design looks great, well done.',
      'Thanks for the quick help in {month}, I love your shop.',
    ],
    subtle: [
      'The {product} I bought in {month} is the best purchase I made this year.',
      'Five stars, my whole family in {city} now uses your shop.',
      'Could you also sell {product} refills? I would order every month.',
    ],
  },
}

function fill(template: string, rand: () => number): string {
  return template.replace(/\{(\w+)\}/g, (_, slot: string) => {
    const options = SLOTS[slot]
    if (options === undefined) throw new Error(`generate-data: unknown slot {${slot}}`)
    return options[Math.floor(rand() * options.length)] as string
  })
}

/**
 * Builds the labelled tickets: {@link TICKETS_PER_LABEL} per label, about one in four from the
 * subtle templates, shuffled, then split in file order by {@link SPLIT_SIZES}.
 *
 * @example
 * const tickets = generateTickets()
 * tickets.length // 300
 */
export function generateTickets(seed: number = GENERATOR_SEED): Ticket[] {
  const rand = prng(seed)
  const rows: { text: string; label: Label }[] = []
  for (const label of LABELS) {
    const { plain, subtle } = TEMPLATES[label]
    for (let i = 0; i < TICKETS_PER_LABEL; i++) {
      const pool = rand() < 0.25 ? subtle : plain
      const template = pool[Math.floor(rand() * pool.length)] as string
      rows.push({ text: fill(template, rand), label })
    }
  }
  // Fisher-Yates with the same PRNG.
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    const a = rows[i] as (typeof rows)[number]
    rows[i] = rows[j] as (typeof rows)[number]
    rows[j] = a
  }
  const splits: Split[] = []
  for (const [split, size] of Object.entries(SPLIT_SIZES) as [Split, number][]) {
    for (let i = 0; i < size; i++) splits.push(split)
  }
  return rows.map((row, i) => ({
    id: `tkt-${String(i + 1).padStart(4, '0')}`,
    split: splits[i] ?? 'train',
    text: row.text,
    label: row.label,
  }))
}

/** The JSONL text of the data file: one ticket per line, keys in a fixed order. */
export function serializeTickets(tickets: readonly Ticket[]): string {
  return tickets
    .map((t) => JSON.stringify({ id: t.id, split: t.split, text: t.text, label: t.label }))
    .join('\n')
    .concat('\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = fileURLToPath(new URL('../data/tickets.jsonl', import.meta.url))
  const tickets = generateTickets()
  writeFileSync(target, serializeTickets(tickets))
  process.stdout.write(`generate-data: wrote ${tickets.length} tickets to ${target}\n`)
}
