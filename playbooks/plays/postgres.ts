/**
 * The plays of the PostgreSQL HA part, for playbooks/postgres.ts and site.ts:
 * base settings, the etcd cluster, PostgreSQL under Patroni, HAProxy in front.
 */
import type { Play } from '../../lib/types.ts'
import { commonRole, etcdRole, haproxyRole, patroniRole, postgresqlRole } from '../../roles/index.ts'

export const postgresPlays: Play[] = [
  { name: 'Prepare the hosts of the PostgreSQL stack', hosts: 'etcd:postgres:haproxy', roles: [commonRole] },
  // etcd members bootstrap together: one failing member must stop the others from waiting for it.
  { name: 'Form the etcd cluster', hosts: 'etcd', roles: [etcdRole], anyErrorsFatal: true },
  { name: 'Run PostgreSQL under Patroni', hosts: 'postgres', roles: [postgresqlRole, patroniRole] },
  { name: 'Route clients through HAProxy', hosts: 'haproxy', roles: [haproxyRole] },
]
