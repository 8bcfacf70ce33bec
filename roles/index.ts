/**
 * Every role of hastack. The inventory is validated against the variables of
 * all of them, whichever playbook runs, so a typo is caught everywhere.
 */
import type { Role } from '../lib/types.ts'
import { commonRole } from './common/index.ts'
import { etcdRole } from './etcd/index.ts'
import { postgresqlRole } from './postgresql/index.ts'
import { patroniRole } from './patroni/index.ts'
import { haproxyRole } from './haproxy/index.ts'
import { keepalivedRole } from './keepalived/index.ts'
import { redisRole } from './redis/index.ts'
import { sentinelRole } from './sentinel/index.ts'
import { nodeExporterRole } from './node_exporter/index.ts'
import { postgresExporterRole } from './postgres_exporter/index.ts'
import { redisExporterRole } from './redis_exporter/index.ts'
import { prometheusRole } from './prometheus/index.ts'
import { alertmanagerRole } from './alertmanager/index.ts'
import { snapshotsRole } from './snapshots/index.ts'
import { pgbackrestRole } from './pgbackrest/index.ts'
import { pgbackrestRepositoryRole } from './pgbackrest/repository.ts'
import { grafanaRole } from './grafana/index.ts'
import { journalRemoteRole } from './journal_remote/index.ts'
import { journalUploadRole } from './journal_upload/index.ts'
import { appRole } from './app/index.ts'
import { certificatesRole } from './certificates/index.ts'
import { nftablesRole } from './nftables/index.ts'

export { commonRole, etcdRole, postgresqlRole, patroniRole, haproxyRole, keepalivedRole, redisRole, sentinelRole }
export { nodeExporterRole, postgresExporterRole, redisExporterRole, prometheusRole, alertmanagerRole }
export { snapshotsRole }
export { pgbackrestRole, pgbackrestRepositoryRole }
export { grafanaRole, journalRemoteRole, journalUploadRole, appRole }
export { certificatesRole, nftablesRole }

export const allRoles: Role<any>[] = [
  commonRole,
  etcdRole,
  postgresqlRole,
  patroniRole,
  haproxyRole,
  keepalivedRole,
  redisRole,
  sentinelRole,
  nodeExporterRole,
  postgresExporterRole,
  redisExporterRole,
  prometheusRole,
  alertmanagerRole,
  snapshotsRole,
  pgbackrestRole,
  pgbackrestRepositoryRole,
  grafanaRole,
  journalRemoteRole,
  journalUploadRole,
  appRole,
  certificatesRole,
  nftablesRole,
]
