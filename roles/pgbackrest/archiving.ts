/**
 * WAL archiving through pgBackRest, as Patroni's dynamic configuration carries it: `archive_mode` and
 * `archive_command` in `postgresql.parameters` and `restore_command` in `postgresql.recovery_conf`.
 * They live in etcd, not in one member's patroni.yml, so every member runs with them and whichever
 * member is primary archives (PostgreSQL archives only on the primary with `archive_mode: on`);
 * replicas and a recovering member fetch WAL the primary no longer has. Set only when the
 * inventory has a backup repository.
 */
import type { Inventory, Vars } from '../../lib/types.ts'
import { groupMembers } from '../stack.ts'

export interface WalArchiving {
  parameters: { archive_mode: 'on'; archive_command: string }
  recovery_conf: { restore_command: string }
}

/** The archiving settings for a member with these variables, or undefined without a repository. */
export function walArchiving(inventory: Pick<Inventory, 'groups' | 'groupHosts'>, v: Vars): WalArchiving | undefined {
  if (groupMembers(inventory, String(v.pgbackrest_group)).length === 0) return undefined
  const pgbackrest = `pgbackrest --stanza=${v.pgbackrest_stanza}`
  return {
    parameters: { archive_mode: 'on', archive_command: `${pgbackrest} archive-push "%p"` },
    recovery_conf: { restore_command: `${pgbackrest} archive-get %f "%p"` },
  }
}
