#!/usr/bin/env -S npx zx
/**
 * The whole stack on bare Debian 12 hosts, in dependency order: base settings
 * everywhere, the PostgreSQL part's plays (etcd, PostgreSQL under Patroni), the
 * Redis part's plays (Redis, Sentinels), HAProxy in front of both, the demo vote
 * app when the inventory has an app group, then the monitoring part (exporters,
 * Alertmanager, Prometheus) when the inventory has a monitoring group. A play
 * whose group the inventory does not have is left out.
 * `npx zx playbooks/site.ts -i inventory/lab.yml [--check --diff --json FILE]`
 */
import { playbook, type Inventory, type Play } from '../lib/index.ts'
import { allRoles } from '../roles/index.ts'
import { appPlays } from './plays/app.ts'
import { hasMonitoring, monitoringPlays } from './plays/monitoring.ts'
import { postgresPlays } from './plays/postgres.ts'
import { redisPlays } from './plays/redis.ts'
import { preparePlay, routeClientsPlay } from './plays/shared.ts'

const plays: Play[] = [
  preparePlay('all', 'Prepare every host'),
  ...postgresPlays,
  ...redisPlays,
  routeClientsPlay,
  ...appPlays,
]

/** The plays whose group the inventory has (with at least one host); each play names one group or `all`. */
export function sitePlays(inventory: Inventory): Play[] {
  const stack = plays.filter((p) => p.hosts === 'all' || inventory.groupHosts(p.hosts).length > 0)
  return [...stack, ...(hasMonitoring(inventory) ? monitoringPlays(inventory) : [])]
}

await playbook({ name: 'site', script: import.meta.url, roles: allRoles, plays: sitePlays })
