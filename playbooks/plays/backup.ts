/**
 * The plays of PostgreSQL's backups, for site.ts and the backup playbooks: on a repository host that
 * is no member, PostgreSQL's binaries (the restore drill runs a scratch instance there) and pgBackRest
 * with its SSH link (the members get theirs in the Patroni play); then the repository host's stanza,
 * check and timers.
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
  // The members got pgBackRest in the Patroni play (postgresPlays); a repository host of its own gets it here.
  const ownHost: Play[] = repoIsMember
    ? []
    : [
        {
          name: 'Install PostgreSQL and pgBackRest on the repository host',
          hosts: repo,
          roles: [postgresqlRole, pgbackrestRole],
        },
      ]
  return [
    ...ownHost,
    { name: 'Create the stanza and schedule backups', hosts: repo, roles: [pgbackrestRepositoryRole] },
  ]
}
