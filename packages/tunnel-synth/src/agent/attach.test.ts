import { expect, test } from 'vitest'
import { backoffDelay } from './attach'

test('backoff: the ceiling doubles from initialMs up to maxMs; jitter draws between half and all of it', () => {
  const ceilings = [250, 500, 1000, 2000, 4000, 5000, 5000]
  expect(ceilings.map((_, i) => backoffDelay(i, 250, 5_000, () => 0.999_999))).toEqual(ceilings)
  expect(ceilings.map((_, i) => backoffDelay(i, 250, 5_000, () => 0))).toEqual(ceilings.map((c) => c / 2))
  expect(backoffDelay(3, 250, 5_000, () => 0.5)).toBe(1500)
})

test('backoff: two agents that lost the same relay do not come back in step', () => {
  let seed = 1
  const random = () => (seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647
  const a = [0, 1, 2, 3].map((i) => backoffDelay(i, 250, 5_000, random))
  const b = [0, 1, 2, 3].map((i) => backoffDelay(i, 250, 5_000, random))
  expect(a).not.toEqual(b)
})
