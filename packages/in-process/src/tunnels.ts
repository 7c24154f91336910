import { tunnelAddsApiKey } from './caller-headers'
import { InProcessError, messageOf } from './errors'
import type { Logger } from './logger'
import type { ResolvedOptions } from './options'
import type { CloudflaredInstallSpec } from './spec-values'
import type { OpenTunnel, TunnelBackend, TunnelTarget } from './tunnel'

/** Loads a module by name. Internal seam: tests swap it to simulate a missing package. */
export type ModuleLoader = (specifier: string) => Promise<Record<string, unknown>>

const defaultLoader: ModuleLoader = (specifier) => import(specifier) as Promise<Record<string, unknown>>
let loader: ModuleLoader = defaultLoader

/**
 * Replaces the loader used for tunnel packages; returns a function that restores the previous one.
 * @internal For tests only.
 */
export function setTunnelModuleLoader(next: ModuleLoader): () => void {
  const previous = loader
  loader = next
  loaded.clear()
  return () => {
    loader = previous
    loaded.clear()
  }
}

/** Tunnel packages loaded so far (Node caches the import itself), for the signal path (`killAllTrackedChildren`). */
const loaded = new Map<string, Record<string, unknown>>()

/** Modules loaded through {@link loadTunnelPackage}. @internal */
export function loadedTunnelModules(): ReadonlyMap<string, Record<string, unknown>> {
  return loaded
}

function isNotFound(err: unknown, specifier: string): boolean {
  const e = err as { code?: unknown; message?: unknown } | null
  const code = typeof e?.code === 'string' ? e.code : ''
  const message = typeof e?.message === 'string' ? e.message : ''
  return (
    (code === 'ERR_MODULE_NOT_FOUND' ||
      code === 'MODULE_NOT_FOUND' ||
      /cannot find (package|module)|failed to (load|resolve)/i.test(message)) &&
    message.includes(specifier)
  )
}

/**
 * Imports an optional tunnel package and checks that it has the factory we need.
 * @internal
 */
export async function loadTunnelPackage(
  specifier: string,
  exportName: string,
  mode: string,
): Promise<(options: object) => unknown> {
  let mod: Record<string, unknown>
  try {
    mod = await loader(specifier)
  } catch (err) {
    if (isNotFound(err, specifier)) {
      throw new InProcessError(
        'TASKAPP_ERR_TUNNEL_UNAVAILABLE',
        `tunnel mode '${mode}' needs the package ${specifier}, which is not installed. ` +
          `Add it (npm install ${specifier}), or use tunnel: { mode: 'local' }.`,
        { cause: err },
      )
    }
    throw new InProcessError(
      'TASKAPP_ERR_TUNNEL_UNAVAILABLE',
      `tunnel mode '${mode}' needs ${specifier}, which failed to load: ${messageOf(err)}`,
      { cause: err },
    )
  }
  loaded.set(specifier, mod)
  const factory = mod[exportName]
  if (typeof factory !== 'function') {
    throw new InProcessError(
      'TASKAPP_ERR_TUNNEL_UNAVAILABLE',
      `${specifier} does not export ${exportName}(); install a version that matches @taskapp/in-process.`,
    )
  }
  return factory as (options: object) => unknown
}

function asBackend(value: unknown, specifier: string, exportName: string): TunnelBackend {
  if (typeof value !== 'object' || value === null || typeof (value as TunnelBackend).open !== 'function') {
    throw new InProcessError(
      'TASKAPP_ERR_TUNNEL_UNAVAILABLE',
      `${specifier} ${exportName}() did not return a TunnelBackend; install a version that matches @taskapp/in-process.`,
    )
  }
  return value as TunnelBackend
}

/** A tunnel that is no tunnel: the public URL is a fixed one (local or preconfigured). */
export function fixedUrlBackend(
  name: string,
  url: ((target: TunnelTarget) => string) | string,
  headers?: Readonly<Record<string, string>>,
): TunnelBackend {
  return {
    name,
    async open(target, options) {
      options?.signal?.throwIfAborted()
      let resolveClosed!: () => void
      const closed = new Promise<void>((resolve) => {
        resolveClosed = resolve
      })
      const close = async (): Promise<void> => {
        resolveClosed()
      }
      const tunnel: OpenTunnel = {
        url: typeof url === 'string' ? url : url(target),
        ...(headers ? { headers } : {}),
        closed,
        close,
        [Symbol.asyncDispose]: close,
      }
      return tunnel
    },
  }
}

/**
 * Builds the backend once the app's API key is known. `containerAuth`: the app verifies container
 * tokens, so a relaying tunnel must not inject the API key.
 */
export type TunnelFactory = (context: {
  apiKey: string | undefined
  containerAuth: boolean
  logger: Logger
}) => TunnelBackend

/**
 * Prepares the backend for the `tunnel` option: the backend given, or the one its spec names. The
 * tunnel package is imported here, before anything starts, so a missing package fails fast.
 * @internal
 */
export async function prepareTunnel(options: ResolvedOptions): Promise<TunnelFactory> {
  const spec = options.tunnel
  switch (spec.mode) {
    case 'custom':
      return () => spec.backend
    case 'local':
      return () => fixedUrlBackend('local', (target) => target.localUrl)
    case 'preconfigured':
      return () => fixedUrlBackend('preconfigured', spec.url, spec.headers)
    case 'synthtunnel': {
      const factory = await loadTunnelPackage('@taskapp/tunnel-synth', 'synthTunnel', 'synthtunnel')
      return ({ apiKey, containerAuth, logger }) =>
        asBackend(
          factory({
            backendUrl: spec.relayUrl,
            ...(spec.relayApiKey ? { apiKey: spec.relayApiKey } : {}),
            // With container tokens the worker token alone must not carry the app's API key (an
            // empty list too, for a tunnel-synth without injectApiKey). The same rule decides
            // whether app.headers lists X-API-Key (see caller-headers.ts).
            localApiKeys: tunnelAddsApiKey('synthtunnel', { apiKey, containerAuth }) ? [apiKey!] : [],
            injectApiKey: !containerAuth,
            logger,
          }),
          '@taskapp/tunnel-synth',
          'synthTunnel',
        )
    }
    case 'quick': {
      const factory = await loadTunnelPackage('@taskapp/tunnel-cloudflare', 'cloudflareQuickTunnel', 'quick')
      return ({ logger }) =>
        asBackend(
          factory({ ...cloudflareBinary(spec), logger }),
          '@taskapp/tunnel-cloudflare',
          'cloudflareQuickTunnel',
        )
    }
    case 'named': {
      const factory = await loadTunnelPackage('@taskapp/tunnel-cloudflare', 'cloudflareNamedTunnel', 'named')
      return ({ logger }) =>
        asBackend(
          factory({ token: spec.token, hostname: spec.hostname, ...cloudflareBinary(spec), logger }),
          '@taskapp/tunnel-cloudflare',
          'cloudflareNamedTunnel',
        )
    }
  }
}

/** The binary options of tunnel-cloudflare: `cloudflaredPath`, and `install` (`true` or what it pins). */
function cloudflareBinary(spec: {
  cloudflaredPath: string | undefined
  install: boolean | CloudflaredInstallSpec
}): object {
  return {
    ...(spec.cloudflaredPath ? { cloudflaredPath: spec.cloudflaredPath } : {}),
    ...(spec.install === false ? {} : { install: spec.install }),
  }
}

/** Calls `killAllTrackedChildren()` of the Cloudflare package if it was loaded; never throws. @internal */
export function killTrackedTunnelChildren(): void {
  const mod = loaded.get('@taskapp/tunnel-cloudflare')
  const kill = mod?.killAllTrackedChildren
  if (typeof kill !== 'function') return
  const run = kill as () => unknown
  try {
    const result = run()
    if (result instanceof Promise) result.catch(() => {})
  } catch {
    // defensive: the signal path must go on
  }
}
