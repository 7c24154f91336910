/**
 * How cloudflared is started: its command line, its environment, and the `{}` config file of a
 * quick tunnel. Command lines as in /work/shared/reference/cloudflared.md, sections 2 and 3.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * The `--metrics` address: port 0, so cloudflared binds a port the kernel picks and logs the
 * address it got (`Starting metrics server on 127.0.0.1:<port>/metrics`, read by the readiness
 * watcher). Choosing a free port here and handing it over would leave a window in which another
 * process takes it, and cloudflared exits when its metrics listener cannot bind.
 */
export const METRICS_LISTEN = '127.0.0.1:0'

/** `cloudflared tunnel --no-autoupdate --config <{}> [extra] --url <origin> --metrics 127.0.0.1:0`. */
export function quickTunnelArgs(
  configPath: string,
  localOrigin: string,
  extraArgs: readonly string[] = [],
): string[] {
  return [
    'tunnel',
    '--no-autoupdate',
    '--config',
    configPath,
    ...extraArgs,
    '--url',
    localOrigin,
    '--metrics',
    METRICS_LISTEN,
  ]
}

/** `cloudflared tunnel --no-autoupdate --metrics 127.0.0.1:0 [extra] run` (token in the environment). */
export function namedTunnelArgs(extraArgs: readonly string[] = []): string[] {
  return ['tunnel', '--no-autoupdate', '--metrics', METRICS_LISTEN, ...extraArgs, 'run']
}

/**
 * cloudflared's environment: `base` without the caller's `TUNNEL_TOKEN` / `TUNNEL_TOKEN_FILE`,
 * plus `TUNNEL_TOKEN=<token>` for a named tunnel (the token never goes on the command line).
 */
export function cloudflaredEnv(base: NodeJS.ProcessEnv, token?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base }
  delete env.TUNNEL_TOKEN_FILE
  delete env.TUNNEL_TOKEN
  if (token !== undefined) env.TUNNEL_TOKEN = token
  return env
}

/** A ready-to-spawn cloudflared command; `cleanup()` removes its temporary config (idempotent). */
export interface CloudflaredInvocation {
  readonly args: readonly string[]
  readonly env: NodeJS.ProcessEnv
  cleanup(): Promise<void>
}

/** What {@link prepareInvocation} needs to know about the tunnel. */
export interface InvocationSpec {
  readonly kind: 'quick' | 'named'
  readonly token?: string
  readonly extraArgs?: readonly string[]
  readonly env?: NodeJS.ProcessEnv
}

/**
 * Builds the command line and environment; for a quick tunnel also writes a `{}` config into a
 * private temp folder, so a user's `~/.cloudflared/config.yml` cannot take over the tunnel.
 */
export async function prepareInvocation(
  spec: InvocationSpec,
  localOrigin: string,
): Promise<CloudflaredInvocation> {
  const env = cloudflaredEnv(spec.env ?? process.env, spec.kind === 'named' ? spec.token : undefined)
  if (spec.kind === 'named') {
    return { args: namedTunnelArgs(spec.extraArgs), env, cleanup: () => Promise.resolve() }
  }
  const configDir = await mkdtemp(join(tmpdir(), 'taskapp-cloudflared-'))
  const configPath = join(configDir, 'config.yml')
  await writeFile(configPath, '{}\n')
  return {
    args: quickTunnelArgs(configPath, localOrigin, spec.extraArgs),
    env,
    cleanup: () => rm(configDir, { recursive: true, force: true }),
  }
}
