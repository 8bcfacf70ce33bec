/**
 * The plays of the monitoring part, for playbooks/monitoring.ts (and site.ts once the lab
 * has converged it): exporters on the hosts that run each service, then Alertmanager and
 * Prometheus on the monitoring group. A part whose group the inventory lacks is left out.
 */
import type { Inventory, Play } from '../../lib/types.ts'
import {
  alertmanagerRole,
  commonRole,
  nodeExporterRole,
  postgresExporterRole,
  prometheusRole,
  redisExporterRole,
} from '../../roles/index.ts'

const plays: (Play & { needs: string })[] = [
  { needs: 'all', name: 'Prepare every host for its exporters', hosts: 'all', roles: [commonRole] },
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
    name: 'Run Alertmanager and Prometheus',
    hosts: 'monitoring',
    roles: [alertmanagerRole, prometheusRole],
  },
]

/** The monitoring plays whose hosts the inventory has. */
export function monitoringPlays(inventory: Inventory): Play[] {
  const present = (group: string) => inventory.groups.has(group) && inventory.groupHosts(group).length > 0
  return plays.filter((p) => p.needs === 'all' || p.needs.split(':').some(present))
}
