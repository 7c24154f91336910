/**
 * GEPA's parent selection: the Pareto front of the validated candidates over the validation seeds
 * (a candidate is on it when it has the best reward on some seed and no other candidate dominates
 * it), sampled in proportion to the seeds it leads on. A seeded PRNG keeps runs reproducible.
 */

/** mulberry32: a small deterministic 32-bit PRNG; returns numbers in [0, 1). */
export function createRng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/** A shuffled copy of `items` (Fisher-Yates with `rng`). */
export function shuffle<T>(items: readonly T[], rng: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1))
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}

/** A validated candidate as the front sees it: its reward per validation seed. */
export interface ScoredCandidate {
  readonly id: string
  readonly scores: ReadonlyMap<number, number>
}

function dominates(a: ScoredCandidate, b: ScoredCandidate, seeds: readonly number[]): boolean {
  let strictly = false
  for (const seed of seeds) {
    const x = a.scores.get(seed) ?? 0
    const y = b.scores.get(seed) ?? 0
    if (x < y) return false
    if (x > y) strictly = true
  }
  return strictly
}

/**
 * The front: for each candidate not dominated by another, the number of seeds on which it has the
 * best reward (seeds where every candidate ties are skipped; when all tie, the first candidate
 * leads alone). In pool order.
 */
export function paretoFront(
  pool: readonly ScoredCandidate[],
  seeds: readonly number[],
): { id: string; leads: number }[] {
  const alive = pool.filter((c) => !pool.some((o) => o !== c && dominates(o, c, seeds)))
  const leads = new Map<string, number>()
  for (const seed of seeds) {
    const values = alive.map((c) => c.scores.get(seed) ?? 0)
    const best = Math.max(...values)
    if (values.every((v) => v === best)) continue
    alive.forEach((c, i) => {
      if (values[i] === best) leads.set(c.id, (leads.get(c.id) ?? 0) + 1)
    })
  }
  const front = alive
    .filter((c) => (leads.get(c.id) ?? 0) > 0)
    .map((c) => ({ id: c.id, leads: leads.get(c.id) ?? 0 }))
  return front.length > 0 ? front : alive.slice(0, 1).map((c) => ({ id: c.id, leads: 1 }))
}

/** Samples one id of the front in proportion to its leads. */
export function sampleFront(front: readonly { id: string; leads: number }[], rng: () => number): string {
  const total = front.reduce((sum, f) => sum + f.leads, 0)
  let pick = rng() * total
  for (const f of front) {
    pick -= f.leads
    if (pick < 0) return f.id
  }
  return (front[front.length - 1] as { id: string }).id
}
