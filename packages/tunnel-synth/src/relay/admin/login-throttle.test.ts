import { describe, expect, it } from 'vitest'
import { LoginThrottle } from './login-throttle'

describe('LoginThrottle', () => {
  it('refuses an address after 5 wrong keys within a minute, until the minute is over', () => {
    let now = 1_000
    const t = new LoginThrottle(() => now)
    for (let i = 0; i < 4; i++) t.failed('a')
    expect(t.waitMs('a')).toBe(0)
    t.failed('a')
    expect(t.waitMs('a')).toBe(60_000)
    expect(t.waitMs('b')).toBe(0) // other addresses are not affected
    now += 59_000
    expect(t.waitMs('a')).toBe(1_000)
    now += 1_000
    expect(t.waitMs('a')).toBe(0)
    t.failed('a') // a new window starts at one failure
    expect(t.waitMs('a')).toBe(0)
  })

  it('a right key forgets the failures; at most 1000 addresses are remembered', () => {
    const now = 0
    const t = new LoginThrottle(() => now)
    for (let i = 0; i < 4; i++) t.failed('a')
    t.succeeded('a')
    for (let i = 0; i < 4; i++) t.failed('a')
    expect(t.waitMs('a')).toBe(0)
    for (let i = 0; i < 5; i++) t.failed('first')
    expect(t.waitMs('first')).toBeGreaterThan(0)
    for (let i = 0; i < 1_000; i++) t.failed(`x${i}`)
    expect(t.waitMs('first')).toBe(0) // forgotten, oldest first
  })
})
