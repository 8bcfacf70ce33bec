/**
 * The plays of the monitoring part, for playbooks/monitoring.ts and site.ts: exporters on the
 * hosts that run each service, then Alertmanager, Prometheus and Grafana (skipped where its
 * package source cannot be reached) on the monitoring group. A play
 * whose group the inventory lacks is left out. The hosts are prepared by the playbook (common).
 */
import type { Inventory, Play } from '../../lib/types.ts'
import {
  alertmanagerRole,
  grafanaRole,
  nodeExporterRole,
  postgresExporterRole,
  prometheusRole,
  redisExporterRole,
} from '../../roles/index.ts'

const plays: (Play & { needs: string })[] = [
  { needs: 'all', name: 'Export host metrics everywhere', hosts: 'all', roles: [nodeExporterRole] },
  { needs: 'postgres', name: 'Export PostgreSQL metrics', hosts: 'postgres', roles: [postgresExporterRole] },
  {
    needs: 'redis:sentinel',
    name: 'Export Redis and Sentinel metrics',
    hosts: 'redis:sentinel',
    roles: [redisExporterRole],
  },
  {
    needs: 'monitoring',
    name: 'Run Alertmanager, Prometheus and Grafana',
    hosts: 'monitoring',
    roles: [alertmanagerRole, prometheusRole, grafanaRole],
  },
]

/** Whether the inventory has the group, with at least one host. */
function hasGroup(inventory: Inventory, group: string): boolean {
  return inventory.groups.has(group) && inventory.groupHosts(group).length > 0
}

/** Whether the inventory has a monitoring host: without one, site.ts leaves the whole part out. */
export function hasMonitoring(inventory: Inventory): boolean {
  return hasGroup(inventory, 'monitoring')
}

/** The monitoring plays whose hosts the inventory has. */
export function monitoringPlays(inventory: Inventory): Play[] {
  return plays.filter((p) => p.needs === 'all' || p.needs.split(':').some((g) => hasGroup(inventory, g)))
}
