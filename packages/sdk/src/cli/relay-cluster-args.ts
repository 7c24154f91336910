/** `taskapp relay` in cluster mode: the flags that go with `--redis-url`, and the cluster secret. */
import type { RelayCommand } from './args'
import { usage, type CliEnv } from './flag-table'
import { flagContext, type FlagHooks } from './flag-parse'
import { readSecretFile } from './secret-flags'

/**
 * The cluster secret when `--redis-url` is given: from `--cluster-secret-file` or
 * `TASKAPP_RELAY_CLUSTER_SECRET` (never a flag: `ps` would show it), 16 characters at least. The
 * cluster flags without `--redis-url`, or no secret, are usage errors.
 * @example
 * ```ts
 * relayClusterSecret({ redisUrl: 'redis://127.0.0.1:6379' }, { TASKAPP_RELAY_CLUSTER_SECRET: s }, {})
 * ```
 */
export function relayClusterSecret(
  fields: Pick<RelayCommand, 'redisUrl' | 'advertiseUrl' | 'clusterSecretFile' | 'nodeId'>,
  env: CliEnv,
  hooks: FlagHooks,
): string | undefined {
  if (fields.redisUrl === undefined) {
    const stray = (['advertiseUrl', 'clusterSecretFile', 'nodeId'] as const).find(
      (k) => fields[k] !== undefined,
    )
    const names = {
      advertiseUrl: '--advertise-url',
      clusterSecretFile: '--cluster-secret-file',
      nodeId: '--node-id',
    }
    if (stray)
      throw usage(
        'relay',
        `${names[stray]} is for cluster mode: give --redis-url (or TASKAPP_RELAY_REDIS_URL) too.`,
      )
    return undefined
  }
  const ctx = flagContext('relay', '--cluster-secret-file')
  const secret =
    fields.clusterSecretFile !== undefined
      ? (readSecretFile(
          fields.clusterSecretFile,
          { multiple: false },
          ctx,
          hooks.warn ?? (() => {}),
        ) as string)
      : env.TASKAPP_RELAY_CLUSTER_SECRET?.trim() || undefined
  if (secret === undefined)
    throw usage(
      'relay',
      '--redis-url needs the cluster secret: --cluster-secret-file <path> or TASKAPP_RELAY_CLUSTER_SECRET.',
    )
  if (secret.trim().length < 16)
    throw usage('relay', 'the cluster secret must be at least 16 characters, the same on every node.')
  return secret.trim()
}
