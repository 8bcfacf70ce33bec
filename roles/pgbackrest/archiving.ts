/**
 * WAL archiving through pgBackRest, as Patroni's dynamic configuration carries it: `archive_mode` and
 * `archive_command` in `postgresql.parameters` and `restore_command` in `postgresql.recovery_conf`.
 * They live in etcd, not in one member's patroni.yml, so every member runs with them and whichever
 * member is primary archives (PostgreSQL archives only on the primary with `archive_mode: on`);
 * replicas and a recovering member fetch WAL the primary no longer has. restore_command is pgBackRest's
 * archive-get through the members' RESTORE_SCRIPT, which answers the timeline history lookups of a promotion
 * that need no repository (templates/pgbackrest/restore-wal.sh.ejs). Set only when the inventory has a
 * backup repository.
 */
import type { Inventory, Vars } from '../../lib/types.ts'
import { groupMembers } from '../stack.ts'

/** The members' restore_command script (roles/pgbackrest installs it): `RESTORE_SCRIPT STANZA %f "%p"`. */
export const RESTORE_SCRIPT = '/usr/local/bin/hastack-pgbackrest-restore'

export interface WalArchiving {
  parameters: { archive_mode: 'on'; archive_command: string }
  recovery_conf: { restore_command: string }
}

/** The archiving settings for a member with these variables, or undefined without a repository. */
export function walArchiving(inventory: Pick<Inventory, 'groups' | 'groupHosts'>, v: Vars): WalArchiving | undefined {
  if (groupMembers(inventory, String(v.pgbackrest_group)).length === 0) return undefined
  const stanza = String(v.pgbackrest_stanza)
  return {
    parameters: { archive_mode: 'on', archive_command: `pgbackrest --stanza=${stanza} archive-push "%p"` },
    recovery_conf: { restore_command: `${RESTORE_SCRIPT} ${stanza} %f "%p"` },
  }
}
