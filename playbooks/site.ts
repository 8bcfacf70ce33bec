#!/usr/bin/env -S npx zx
/**
 * The whole stack on bare Debian 12 hosts, in dependency order: base settings
 * everywhere, the etcd cluster, PostgreSQL under Patroni, Redis and its
 * Sentinels, then HAProxy in front of both. A part whose group the inventory
 * does not have is left out.
 * `npx zx playbooks/site.ts -i inventory/lab.yml [--check --diff --json FILE]`
 */
import { playbook, type Inventory, type Play } from '../lib/index.ts'
import { commonRole, etcdRole, haproxyRole, patroniRole, postgresqlRole, redisRole, sentinelRole } from '../roles/index.ts'

const plays: (Play & { needs: string })[] = [
  { needs: 'all', name: 'Prepare every host', hosts: 'all', roles: [commonRole] },
  // etcd members bootstrap together: one failing member must stop the others from waiting for it.
  { needs: 'etcd', name: 'Form the etcd cluster', hosts: 'etcd', roles: [etcdRole], anyErrorsFatal: true },
  { needs: 'postgres', name: 'Run PostgreSQL under Patroni', hosts: 'postgres', roles: [postgresqlRole, patroniRole] },
  { needs: 'redis', name: 'Converge Redis primary and replicas', hosts: 'redis', roles: [redisRole] },
  { needs: 'sentinel', name: 'Converge the Sentinels', hosts: 'sentinel', roles: [sentinelRole] },
  { needs: 'haproxy', name: 'Route clients through HAProxy', hosts: 'haproxy', roles: [haproxyRole] },
]

/** The plays whose group the inventory has (with at least one host). */
export function sitePlays(inventory: Inventory): Play[] {
  return plays.filter((p) => p.needs === 'all' || inventory.groupHosts(p.needs).length > 0)
}

await playbook({ name: 'site', script: import.meta.url, plays: sitePlays })
