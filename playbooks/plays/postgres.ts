/**
 * The service plays of the PostgreSQL HA part, for playbooks/postgres.ts and site.ts: the etcd
 * cluster, then PostgreSQL under Patroni (with pgBackRest's side on the members when there is a
 * backup repository). `POSTGRES_HOSTS` are the hosts the part prepares.
 */
import type { Play } from '../../lib/types.ts'
import { etcdRole, patroniRole, pgbackrestRole, postgresqlRole } from '../../roles/index.ts'

export const POSTGRES_HOSTS = 'etcd:postgres:haproxy'

export const postgresPlays: Play[] = [
  // etcd members bootstrap together: one failing member must stop the others from waiting for it.
  { name: 'Form the etcd cluster', hosts: 'etcd', roles: [etcdRole], anyErrorsFatal: true },
  // pgBackRest before Patroni: Patroni's restore_command runs it from the first start (nothing without a backup_repo).
  { name: 'Run PostgreSQL under Patroni', hosts: 'postgres', roles: [postgresqlRole, pgbackrestRole, patroniRole] },
]
