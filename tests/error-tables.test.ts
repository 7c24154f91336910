/**
 * Every package's error codes are a const object; its README's Errors table lists exactly those
 * codes (no more, no fewer), and its error class belongs to the one `TaskappError` family.
 */
import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import {
  CloudflareTunnelError,
  CloudflareTunnelErrorCode,
  CoreError,
  CoreErrorCode,
  HealthCheckError,
  HealthCheckErrorCode,
  InProcessError,
  InProcessErrorCode,
  PortManagerError,
  PortManagerErrorCode,
  SdkError,
  SdkErrorCode,
  SynthTunnelError,
  SynthTunnelErrorCode,
  TaskappError,
  TaskServerError,
  TaskServerErrorCode,
} from '@taskapp/sdk'
import { ExampleError, ExampleErrorCode } from '../apps/example/src/errors'
import { JobsError, JobsErrorCode } from '@taskapp/jobs'

type ErrorClass = new (code: never, message: string, options?: { cause?: unknown }) => Error

const packages: ReadonlyArray<{ readme: string; codes: Record<string, string>; ErrorClass: ErrorClass }> = [
  { readme: 'packages/core', codes: CoreErrorCode, ErrorClass: CoreError },
  { readme: 'packages/port-manager', codes: PortManagerErrorCode, ErrorClass: PortManagerError },
  { readme: 'packages/health-checker', codes: HealthCheckErrorCode, ErrorClass: HealthCheckError },
  { readme: 'packages/task-server', codes: TaskServerErrorCode, ErrorClass: TaskServerError },
  {
    readme: 'packages/tunnel-cloudflare',
    codes: CloudflareTunnelErrorCode,
    ErrorClass: CloudflareTunnelError,
  },
  { readme: 'packages/tunnel-synth', codes: SynthTunnelErrorCode, ErrorClass: SynthTunnelError },
  { readme: 'packages/in-process', codes: InProcessErrorCode, ErrorClass: InProcessError },
  { readme: 'packages/sdk', codes: SdkErrorCode, ErrorClass: SdkError },
  { readme: 'packages/jobs', codes: JobsErrorCode, ErrorClass: JobsError },
  { readme: 'apps/example', codes: ExampleErrorCode, ErrorClass: ExampleError },
]

/** The codes in the first column of the README's `## Errors` section. */
async function readmeCodes(dir: string): Promise<string[]> {
  const readme = await readFile(new URL(`../${dir}/README.md`, import.meta.url), 'utf8')
  const start = readme.search(/^## Errors/m)
  expect(start, `${dir}/README.md has an "## Errors" section`).toBeGreaterThanOrEqual(0)
  const rest = readme.slice(start + 1)
  const end = rest.search(/^## /m)
  const section = end === -1 ? rest : rest.slice(0, end)
  return [...section.matchAll(/^\| `(TASKAPP_ERR_[A-Z0-9_]+)`/gm)].map((m) => m[1] as string)
}

describe.each(packages)('$readme', ({ readme, codes, ErrorClass }) => {
  it('README Errors table lists exactly the codes of the const object, once each', async () => {
    const listed = await readmeCodes(readme)
    const values = Object.values(codes)
    expect(values.length).toBeGreaterThan(0)
    expect(new Set(values).size).toBe(values.length)
    expect([...listed].sort()).toEqual([...values].sort())
  })

  it('codes are stable TASKAPP_ERR_ strings', () => {
    for (const code of Object.values(codes)) expect(code).toMatch(/^TASKAPP_ERR_[A-Z0-9_]+$/)
  })

  it('its error class is a TaskappError with code, name and cause', () => {
    const cause = new Error('root')
    const code = Object.values(codes)[0] as never
    const err = new ErrorClass(code, 'what to do', { cause })
    expect(err).toBeInstanceOf(TaskappError)
    expect(err).toBeInstanceOf(ErrorClass)
    expect(err).toBeInstanceOf(Error)
    expect(err).toMatchObject({ code, message: 'what to do', name: ErrorClass.name })
    expect(err.cause).toBe(cause)
    const others = packages.filter((p) => p.ErrorClass !== ErrorClass)
    for (const other of others) expect(err instanceof other.ErrorClass).toBe(false)
  })
})
