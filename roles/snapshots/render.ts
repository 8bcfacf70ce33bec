/**
 * What the snapshots templates print, prepared from the inventory: which kinds this inventory has
 * (Redis when it has a `redis` group, etcd when it has etcd members), the servers a snapshot may be
 * taken from, and each kind's settings file (credentials included).
 */
import type { HostView } from '../../lib/types.ts'
import { etcdClientUrls } from '../etcd/index.ts'
import { groupMembers, tlsOn } from '../stack.ts'
import { redisTlsArgs } from '../redis/cli.ts'
import { tlsFiles } from '../tls.ts'
import type { SnapshotsVars } from './vars.ts'

export type SnapshotKind = 'redis' | 'etcd'

/** Debian's built-in textfile directory of prometheus-node-exporter (its `--collector.textfile.directory`). */
export const METRICS_DIR = '/var/lib/prometheus/node-exporter'
export const SNAPSHOT_SCRIPT = '/usr/local/sbin/hastack-snapshot'

export const envFile = (kind: SnapshotKind) => `/etc/hastack/snapshot-${kind}.env`
export const unitName = (kind: SnapshotKind) => `hastack-snapshot-${kind}`
export const extension = (kind: SnapshotKind) => (kind === 'redis' ? 'rdb' : 'db')

/** The kinds of snapshot this inventory calls for, Redis first. */
export function snapshotKinds(host: Pick<HostView, 'vars' | 'inventory'>): SnapshotKind[] {
  const v = host.vars as SnapshotsVars
  const kinds: SnapshotKind[] = []
  if (groupMembers(host.inventory, 'redis').length > 0) kinds.push('redis')
  if (groupMembers(host.inventory, v.etcd_group).length > 0) kinds.push('etcd')
  return kinds
}

/** Every Redis server as `address:port`, in inventory order: the script takes from a healthy replica. */
export function redisSources(host: HostView): string[] {
  return groupMembers(host.inventory, 'redis').map((name) => {
    const v = host.hostvars(name)
    return `${String(v.address)}:${Number(v.redis_port)}`
  })
}

/** The settings of one kind's unit, as name and value pairs, in the order they are written. */
export function snapshotEnvView(host: HostView, kind: SnapshotKind): [string, string | number][] {
  const v = host.vars as SnapshotsVars
  const common: [string, string | number][] = [
    ['SNAPSHOT_DIR', v.snapshots_dir],
    ['SNAPSHOT_KEEP', v.snapshots_keep],
    ['SNAPSHOT_TIMEOUT', v.snapshots_timeout_seconds],
    ['SNAPSHOT_METRICS_DIR', METRICS_DIR],
  ]
  if (kind === 'redis')
    return [
      ...common,
      ['REDIS_SOURCES', redisSources(host).join(' ')],
      // redis-cli's TLS options (absolute paths and flags: split on blanks by the script), empty in plaintext.
      ['REDIS_CLI_TLS', redisTlsArgs(v).join(' ')],
      ['REDISCLI_AUTH', String(v.redis_password)],
    ]
  const sources = etcdClientUrls(host)
  // With TLS, etcdctl (root) presents the host's own certificate and checks the members' with the CA.
  const files = tlsOn(v, 'etcd') ? tlsFiles(v) : undefined
  const tls: [string, string][] = files
    ? [
        ['ETCDCTL_CACERT', files.ca],
        ['ETCDCTL_CERT', files.cert],
        ['ETCDCTL_KEY', files.key],
      ]
    : []
  const auth: [string, string][] = v.etcd_auth
    ? [
        ['ETCDCTL_USER', 'root'],
        ['ETCDCTL_PASSWORD', v.etcd_root_password],
      ]
    : []
  return [...common, ['ETCD_SOURCES', sources.join(' ')], ['ETCDCTL_API', '3'], ...tls, ...auth]
}
