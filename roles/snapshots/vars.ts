/**
 * The snapshots role's variables, declared once: where snapshots are kept, how many, when they are
 * taken and how long one may take; and the shared variables it reads to reach Redis and etcd.
 */
import type { VarSchema, Vars } from '../../lib/types.ts'
import { TLS_VARS, sharedVars, type StackVars } from '../stack.ts'

const shared = sharedVars(
  'redis_port',
  'redis_password',
  'etcd_group',
  'etcd_client_port',
  'etcd_auth',
  'etcd_root_password',
  ...TLS_VARS,
)

export interface SnapshotsVars extends Vars, Pick<StackVars, keyof typeof shared.schema> {
  snapshots_dir: string
  snapshots_keep: number
  snapshots_redis_schedule: string
  snapshots_etcd_schedule: string
  snapshots_timeout_seconds: number
}

export const defaults: SnapshotsVars = {
  ...shared.defaults,
  snapshots_dir: '/var/backups/hastack',
  snapshots_keep: 7,
  snapshots_redis_schedule: '*-*-* 02:30:00',
  snapshots_etcd_schedule: '*-*-* 02:45:00',
  snapshots_timeout_seconds: 3600,
}

export const schema: Record<string, VarSchema> = {
  ...shared.schema,
  snapshots_dir: {
    type: 'string',
    format: 'absolute-path',
    description: 'Directory of the snapshots on the backup hosts (root only, 0700): `<kind>-<UTC time>.{rdb,db}`.',
  },
  snapshots_keep: {
    type: 'integer',
    minimum: 1,
    maximum: 1000,
    description: 'Snapshots kept of each kind (the oldest beyond are removed after a successful one).',
  },
  snapshots_redis_schedule: {
    type: 'string',
    format: 'systemd-calendar',
    description: 'When the Redis snapshot is taken (systemd `OnCalendar=`, host time).',
  },
  snapshots_etcd_schedule: {
    type: 'string',
    format: 'systemd-calendar',
    description: 'When the etcd snapshot is taken (systemd `OnCalendar=`, host time).',
  },
  snapshots_timeout_seconds: {
    type: 'integer',
    minimum: 60,
    maximum: 86400,
    description: 'Longest a snapshot may take; a slower one is stopped and counts as failed.',
  },
}
