/**
 * The one error base of every taskapp package, with undici's brand pattern so that `instanceof`
 * holds across duplicated copies of a module (two bundles, two installed versions).
 */

/** The brand every taskapp error carries: the list of families it belongs to, most general first. */
const kFamilies = Symbol.for('taskapp.error')

/** The options every taskapp error takes. */
export interface TaskappErrorOptions {
  /** The original error, when this one wraps it. */
  cause?: unknown
}

/** Any class of the family: what `instanceof` is checked against. */
interface ErrorClass {
  readonly family?: string
}

function familiesOf(ctor: unknown): readonly string[] {
  const families: string[] = []
  for (let c = ctor; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) {
    if (Object.hasOwn(c, 'family')) families.unshift((c as ErrorClass).family as string)
  }
  return families
}

/**
 * The base of every taskapp error: a stable `code` to match on, a message that says what to do,
 * and the original error as `cause`. Each package has one subclass (`PortManagerError`,
 * `SynthTunnelError`, ...) that sets its own `family`.
 *
 * `instanceof` is decided by a brand (`Symbol.for('taskapp.error')`), not by object identity: an
 * error made by one copy of a package is `instanceof` the class of another copy.
 *
 * @example
 * ```ts
 * import { TaskappError } from '@taskapp/core'
 *
 * try {
 *   await InProcessTaskApp.start({ configFactory: buildConfig })
 * } catch (err) {
 *   if (err instanceof TaskappError) console.error(err.code, err.message)
 * }
 * ```
 */
export class TaskappError<Code extends string = string> extends Error {
  /**
   * The family name `instanceof` checks for. A subclass sets its own (usually its class name);
   * a subclass that does not is checked by ordinary prototype identity.
   */
  static readonly family: string = 'TaskappError'

  override readonly name: string = 'TaskappError'
  /** Stable machine-readable code, e.g. `TASKAPP_ERR_PORT_IN_USE`. Match on this. */
  readonly code: Code

  constructor(code: Code, message: string, options: TaskappErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    Object.defineProperty(this, kFamilies, { value: familiesOf(new.target), enumerable: false })
  }

  /** Brand check: true when `instance` belongs to this class's family, whichever copy made it. */
  static override [Symbol.hasInstance](this: ErrorClass, instance: unknown): boolean {
    if (!Object.hasOwn(this, 'family')) return Function.prototype[Symbol.hasInstance].call(this, instance)
    if (typeof instance !== 'object' || instance === null) return false
    const families = (instance as { [kFamilies]?: unknown })[kFamilies]
    return Array.isArray(families) && families.includes(this.family)
  }
}

/** Stable codes of {@link CoreError}; match on `err.code`, never on the message. */
export const CoreErrorCode = {
  /** `SYNTH_BACKEND_URL_OVERRIDE`, `SYNTH_BACKEND_URL` or a `backendUrl` option is not usable. */
  InvalidSynthBackendUrl: 'TASKAPP_ERR_INVALID_SYNTH_BACKEND_URL',
} as const

/** One of the {@link CoreErrorCode} values. */
export type CoreErrorCode = (typeof CoreErrorCode)[keyof typeof CoreErrorCode]

/**
 * The errors `@taskapp/core` throws itself (so far only those of `resolveSynthBackendUrl`). Packages
 * that call core wrap them once into their own family, with this error as `cause`.
 *
 * @example
 * ```ts
 * try {
 *   resolveSynthBackendUrl()
 * } catch (err) {
 *   if (err instanceof CoreError && err.code === 'TASKAPP_ERR_INVALID_SYNTH_BACKEND_URL') console.error(err.message)
 * }
 * ```
 */
export class CoreError extends TaskappError<CoreErrorCode> {
  static override readonly family: string = 'CoreError'
  override readonly name = 'CoreError'
}

/**
 * True when `err` is a taskapp error (of any package, any copy), with the given code if one is
 * passed.
 *
 * @example
 * ```ts
 * if (isTaskappError(err, 'TASKAPP_ERR_PORT_IN_USE')) console.error('port taken:', err.message)
 * ```
 */
export function isTaskappError<Code extends string>(err: unknown, code?: Code): err is TaskappError<Code> {
  return err instanceof TaskappError && (code === undefined || err.code === code)
}

/**
 * The message of anything thrown, for wrapping it into a message of our own.
 *
 * @example
 * ```ts
 * throw new MyError('TASKAPP_ERR_X', `could not read the file: ${messageOf(err)}`, { cause: err })
 * ```
 */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
