import { describe, expect, it } from 'vitest'
import { TaskappError, isTaskappError, messageOf } from './index'

class PlainError extends TaskappError<'TASKAPP_ERR_PLAIN'> {}

class FamilyError extends TaskappError<'TASKAPP_ERR_A' | 'TASKAPP_ERR_B'> {
  static override readonly family: string = 'FamilyError'
  override readonly name = 'FamilyError'
}

class SubFamilyError extends FamilyError {
  static override readonly family: string = 'SubFamilyError'
}

/** What a second copy of the same package (another bundle or version) declares. */
function secondCopy() {
  class CopyBase<C extends string> extends Error {
    static readonly family: string = 'TaskappError'
    constructor(
      readonly code: C,
      message: string,
    ) {
      super(message)
      Object.defineProperty(this, Symbol.for('taskapp.error'), { value: ['TaskappError', 'FamilyError'] })
    }
  }
  return CopyBase
}

describe('TaskappError', () => {
  it('carries code, message, name and cause', () => {
    const cause = new Error('root')
    const err = new FamilyError('TASKAPP_ERR_A', 'say what to do', { cause })
    expect(err).toMatchObject({ code: 'TASKAPP_ERR_A', message: 'say what to do', name: 'FamilyError' })
    expect(err.cause).toBe(cause)
    expect(new FamilyError('TASKAPP_ERR_B', 'x')).not.toHaveProperty('cause')
    expect(err.stack).toContain('FamilyError: say what to do')
  })

  it('instanceof follows the family brand, not object identity', () => {
    const Copy = secondCopy()
    const foreign = new Copy('TASKAPP_ERR_A', 'made by another copy')
    expect(foreign instanceof TaskappError).toBe(true)
    expect(foreign instanceof FamilyError).toBe(true)
    expect(foreign instanceof SubFamilyError).toBe(false)
    expect(isTaskappError(foreign, 'TASKAPP_ERR_A')).toBe(true)
  })

  it('a subclass is an instance of its ancestors and not of its siblings', () => {
    const sub = new SubFamilyError('TASKAPP_ERR_A', 'x')
    expect(sub).toBeInstanceOf(SubFamilyError)
    expect(sub).toBeInstanceOf(FamilyError)
    expect(sub).toBeInstanceOf(TaskappError)
    expect(sub).toBeInstanceOf(Error)
    expect(new FamilyError('TASKAPP_ERR_A', 'x') instanceof SubFamilyError).toBe(false)
  })

  it('a subclass without a family of its own is checked by prototype identity', () => {
    const plain = new PlainError('TASKAPP_ERR_PLAIN', 'x')
    expect(plain).toBeInstanceOf(PlainError)
    expect(plain).toBeInstanceOf(TaskappError)
    expect(new FamilyError('TASKAPP_ERR_A', 'x') instanceof PlainError).toBe(false)
  })

  it('refuses non-objects and look-alikes without the brand', () => {
    for (const value of [
      null,
      undefined,
      'TASKAPP_ERR_A',
      42,
      {},
      new Error('x'),
      { code: 'TASKAPP_ERR_A' },
    ]) {
      expect(value instanceof TaskappError).toBe(false)
      expect(isTaskappError(value)).toBe(false)
    }
  })

  it('isTaskappError matches the code when one is given', () => {
    const err = new FamilyError('TASKAPP_ERR_A', 'x')
    expect(isTaskappError(err)).toBe(true)
    expect(isTaskappError(err, 'TASKAPP_ERR_A')).toBe(true)
    expect(isTaskappError(err, 'TASKAPP_ERR_B')).toBe(false)
  })

  it('the brand is not enumerable (errors log and serialize as before)', () => {
    const err = new FamilyError('TASKAPP_ERR_A', 'x')
    expect(Object.keys(err)).not.toContain(Symbol.for('taskapp.error'))
    expect(JSON.parse(JSON.stringify(err))).toEqual({ name: 'FamilyError', code: 'TASKAPP_ERR_A' })
  })

  it('messageOf reads errors and anything else', () => {
    expect(messageOf(new Error('boom'))).toBe('boom')
    expect(messageOf('plain')).toBe('plain')
    expect(messageOf(42)).toBe('42')
  })
})
