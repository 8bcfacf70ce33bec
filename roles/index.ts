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
import { redisRole } from './redis/index.ts'
import { sentinelRole } from './sentinel/index.ts'
import { nodeExporterRole } from './node_exporter/index.ts'
import { postgresExporterRole } from './postgres_exporter/index.ts'
import { redisExporterRole } from './redis_exporter/index.ts'
import { prometheusRole } from './prometheus/index.ts'
import { alertmanagerRole } from './alertmanager/index.ts'
import { appRole } from './app/index.ts'

export { commonRole, etcdRole, postgresqlRole, patroniRole, haproxyRole, redisRole, sentinelRole }
export { nodeExporterRole, postgresExporterRole, redisExporterRole, prometheusRole, alertmanagerRole, appRole }

export const allRoles: Role<any>[] = [
  commonRole,
  etcdRole,
  postgresqlRole,
  patroniRole,
  haproxyRole,
  redisRole,
  sentinelRole,
  nodeExporterRole,
  postgresExporterRole,
  redisExporterRole,
  prometheusRole,
  alertmanagerRole,
  appRole,
]
