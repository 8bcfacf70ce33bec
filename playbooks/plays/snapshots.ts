/**
 * The Redis and etcd snapshots on the backup_repo group, for site.ts: after the services they copy
 * run (the first converge takes one snapshot of each kind).
 */
import type { Play } from '../../lib/types.ts'
import { snapshotsRole } from '../../roles/index.ts'

export const snapshotsPlay: Play = {
  name: 'Snapshot Redis and etcd on the backup hosts',
  hosts: 'backup_repo',
  roles: [snapshotsRole],
}
