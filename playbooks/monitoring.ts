#!/usr/bin/env -S npx zx
/**
 * Monitoring: node_exporter on every host, postgres_exporter and redis_exporter beside
 * their services, Alertmanager and Prometheus (scrape jobs from the inventory, hastack's
 * tested alert rules) on the monitoring group. Run after site.ts (the exporters read the
 * services' passwords and ports; postgres_exporter's role is created on the Patroni leader);
 * site.ts runs the same plays at its end when the inventory has a monitoring group.
 * `npx zx playbooks/monitoring.ts -i inventory/lab-small.yml [--check --diff]`
 */
import { playbook, type Inventory } from '../lib/index.ts'
import { allRoles } from '../roles/index.ts'
import { monitoringPlays } from './plays/monitoring.ts'
import { preparePlay } from './plays/shared.ts'

await playbook({
  name: 'monitoring',
  script: import.meta.url,
  roles: allRoles,
  plays: (inventory: Inventory) => [
    preparePlay('all', 'Prepare every host for its exporters'),
    ...monitoringPlays(inventory),
  ],
})
