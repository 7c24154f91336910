import { describe, expect, it } from 'vitest'
import { RollingCounts } from './rolling-counts'

describe('RollingCounts', () => {
  const MIN = 60_000
  const t0 = 1_000 * MIN // a minute boundary

  it('sums the last minute and the last five, forgetting older buckets', () => {
    const c = new RollingCounts()
    c.add(t0, false)
    c.add(t0 + 10, true)
    expect(c.sum(t0 + 20, 1)).toEqual({ requests: 2, errors: 1 })
    c.add(t0 + 2 * MIN, false)
    expect(c.sum(t0 + 2 * MIN, 1)).toEqual({ requests: 1, errors: 0 })
    expect(c.sum(t0 + 2 * MIN)).toEqual({ requests: 3, errors: 1 })
    // five minutes on, the first bucket has left the window; its slot is reused for the new minute
    expect(c.sum(t0 + 5 * MIN)).toEqual({ requests: 1, errors: 0 })
    c.add(t0 + 5 * MIN, true)
    expect(c.sum(t0 + 5 * MIN)).toEqual({ requests: 2, errors: 1 })
    expect(c.sum(t0 + 20 * MIN)).toEqual({ requests: 0, errors: 0 })
    expect(c.lastAt).toBe(t0 + 5 * MIN)
  })
})
