#!/usr/bin/env -S npx zx
/**
 * The whole stack on bare Debian 12 hosts, in dependency order: base settings everywhere, the
 * PostgreSQL part's plays (etcd, PostgreSQL under Patroni), the Redis part's plays (Redis,
 * Sentinels), HAProxy (behind keepalived's VIP when one is set) in front of both, the demo vote app
 * when the inventory has an app group, the Redis and etcd snapshots and pgBackRest's backups when it
 * has a backup repository host, then the monitoring part (exporters, Alertmanager, Prometheus,
 * Grafana) with a monitoring group, and the central logs (journal-remote on the logging group,
 * journal-upload everywhere) with a logging group. A play whose group the inventory does not have is
 * left out. Host certificates (with `tls_enabled`) come with the base settings, the firewall
 * (with `firewall_enabled`) right after them: its rules come from the inventory alone, so a host joining
 * the stack is let in by every other host before a service (an etcd member add, replication) needs it.
 * `npx zx playbooks/site.ts -i inventory/lab.yml [--check --diff --json FILE]`
 */
import { playbook, type Inventory, type Play } from '../lib/index.ts'
import { allRoles, nftablesRole } from '../roles/index.ts'
import { backupPlays, hasBackupRepository } from './plays/backup.ts'
import { hasLogging, loggingPlays } from './plays/logging.ts'
import { appPlays } from './plays/app.ts'
import { hasMonitoring, monitoringPlays } from './plays/monitoring.ts'
import { postgresPlays } from './plays/postgres.ts'
import { redisPlays } from './plays/redis.ts'
import { preparePlay, routeClientsPlay } from './plays/shared.ts'
import { snapshotsPlay } from './plays/snapshots.ts'

const plays: Play[] = [
  preparePlay('all', 'Prepare every host'),
  { name: 'Close every port the stack does not use', hosts: 'all', roles: [nftablesRole] },
  ...postgresPlays,
  ...redisPlays,
  routeClientsPlay,
  ...appPlays,
  snapshotsPlay,
]

/** The plays whose group the inventory has (with at least one host); each play names one group or `all`. */
export function sitePlays(inventory: Inventory): Play[] {
  const stack = plays.filter((p) => p.hosts === 'all' || inventory.groupHosts(p.hosts).length > 0)
  const backups = hasBackupRepository(inventory) ? backupPlays(inventory) : []
  return [
    ...stack,
    ...backups,
    ...(hasMonitoring(inventory) ? monitoringPlays(inventory) : []),
    ...(hasLogging(inventory) ? loggingPlays : []),
  ]
}

await playbook({ name: 'site', script: import.meta.url, roles: allRoles, plays: sitePlays })
