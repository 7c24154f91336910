import { describe, expect, it } from 'vitest'
import { errorFields, errorStack } from './index'

function thrower(): never {
  throw new Error('boom')
}

function caught(fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a throw')
}

describe('errorFields', () => {
  it('gives name, message and code (only when there is one)', () => {
    expect(errorFields(new TypeError('bad'))).toEqual({ name: 'TypeError', message: 'bad' })
    const coded = Object.assign(new Error('gone'), { code: 'E_GONE' })
    expect(errorFields(coded)).toEqual({ name: 'Error', message: 'gone', code: 'E_GONE' })
  })
})

describe('errorStack', () => {
  it('lists the frames, indented, naming the function that threw', () => {
    const text = errorStack(caught(thrower))
    const lines = text.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^ {4}at thrower \(.*log-errors\.test\.ts:\d+:\d+\)$/)
    expect(lines.every((line) => line.startsWith('    at '))).toBe(true)
    expect(text).not.toContain('boom') // the message is on the log line already
    expect(text.endsWith('\n')).toBe(true)
  })

  it('follows causes (with their frames), and stops after three', () => {
    const inner = caught(thrower)
    const outer = new Error('wrapped', { cause: inner })
    const text = errorStack(outer)
    expect(text).toContain('    caused by: Error: boom\n      at thrower (')
    let deep: Error = new Error('e0')
    for (let i = 1; i <= 6; i++) deep = new Error(`e${i}`, { cause: deep })
    expect(errorStack(deep).match(/caused by:/g)).toHaveLength(3)
    expect(errorStack(new Error('x', { cause: 'a string' }))).toContain('caused by: a string')
  })

  it('is empty for an error without frames', () => {
    const bare = new Error('no stack')
    bare.stack = undefined
    expect(errorStack(bare)).toBe('')
  })
})
