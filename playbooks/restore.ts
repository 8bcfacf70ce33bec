#!/usr/bin/env -S npx zx
/**
 * Point-in-time restore of the whole Patroni cluster from pgBackRest's repository.
 * Without --confirm it checks the target against the repository, prints the plan and changes
 * nothing. With --confirm: the leader's newest transaction is archived; a target outside what the
 * repository holds is refused (nothing touched); then Patroni is stopped on every member, one member
 * (the repository host when it is one, else the first) is restored to the target and recovered there
 * by PostgreSQL (a new timeline), the cluster's keys in etcd are removed so that member leads with its
 * own data, and the others are re-initialised from it. When the restore fails before the keys are
 * removed, the cluster is brought back on the data it had; after that, the failure says how to finish.
 * `npx zx playbooks/restore.ts -i inventory/lab-small.yml (--time "2026-11-30 06:12:00+00" | --xid X |
 *   --name RESTORE_POINT | --latest) [--confirm]`
 */
import { InputError, playbook, type Inventory, type Play } from '../lib/index.ts'
import type { CliOptions } from '../lib/cli/args.ts'
import { allRoles } from '../roles/index.ts'
import { targetFromOptions } from '../roles/pgbackrest/pitr-target.ts'
import { restorePlays } from './restore/plays.ts'

await playbook({
  name: 'restore',
  script: import.meta.url,
  roles: allRoles,
  options: {
    time: { type: 'string', valueName: 'TIMESTAMP', description: 'restore to this time, with its UTC offset' },
    xid: { type: 'string', valueName: 'XID', description: 'restore up to this transaction, included' },
    name: { type: 'string', valueName: 'RESTORE_POINT', description: 'restore to a pg_create_restore_point name' },
    latest: { type: 'boolean', description: 'restore to the newest archived WAL' },
    confirm: { type: 'boolean', description: 'do it (without: print the plan and change nothing)' },
  },
  plays: (inventory: Inventory, options: CliOptions): Play[] => {
    const target = targetFromOptions(options.playbookOptions)
    if (options.limit) throw new InputError('--limit: a restore works on every member of the cluster at once')
    return restorePlays(inventory, target, Boolean(options.playbookOptions.confirm))
  },
})
