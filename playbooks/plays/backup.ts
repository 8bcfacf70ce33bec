/**
 * The plays of PostgreSQL's backups, for site.ts and the backup playbooks: PostgreSQL's binaries on
 * the repository host (the restore drill runs a scratch instance there), pgBackRest and its SSH link
 * on the members and the repository host, then the repository host's stanza, check and timers.
 * Left out when the inventory has no repository host (the `pgbackrest_group`, default backup_repo).
 */
import type { Inventory, Play } from '../../lib/types.ts'
import { pgbackrestRepositoryRole, pgbackrestRole, postgresqlRole } from '../../roles/index.ts'
import { groupMembers, STACK_DEFAULTS } from '../../roles/stack.ts'

/** The repository group's name as the inventory sets it (its `all` vars), else the default. */
export function backupGroup(inventory: Inventory): string {
  const first = inventory.hosts.values().next().value
  return String(first?.vars.pgbackrest_group ?? STACK_DEFAULTS.pgbackrest_group)
}

export function hasBackupRepository(inventory: Inventory): boolean {
  return groupMembers(inventory, backupGroup(inventory)).length > 0
}

export function backupPlays(inventory: Inventory): Play[] {
  const repo = backupGroup(inventory)
  const members = String(inventory.hosts.values().next().value?.vars.patroni_group ?? STACK_DEFAULTS.patroni_group)
  const repoIsMember = groupMembers(inventory, repo).every((h) => groupMembers(inventory, members).includes(h))
  const binaries: Play[] = repoIsMember
    ? []
    : [{ name: 'Install PostgreSQL on the backup repository host', hosts: repo, roles: [postgresqlRole] }]
  return [
    ...binaries,
    {
      name: 'Link the members and the repository with pgBackRest',
      hosts: `${members}:${repo}`,
      roles: [pgbackrestRole],
    },
    { name: 'Create the stanza and schedule backups', hosts: repo, roles: [pgbackrestRepositoryRole] },
  ]
}
