#!/usr/bin/env -S npx zx
/**
 * An on-demand PostgreSQL backup with pgBackRest, on the repository host, through the same script
 * its timers run (from a healthy standby when there is one; the monitoring textfile is updated).
 * Prints the backup's label, size and duration.
 * `npx zx playbooks/backup.ts -i inventory/lab-small.yml [--type full|diff|incr]` (default incr)
 */
import { command, InputError, playbook, type Inventory } from '../lib/index.ts'
import type { CliOptions } from '../lib/cli/args.ts'
import { allRoles } from '../roles/index.ts'
import { BACKUP_SCRIPT } from '../roles/pgbackrest/repository.ts'
import { backupGroup, hasBackupRepository } from './plays/backup.ts'

const TYPES = ['full', 'diff', 'incr']

/** What the backup script prints on success. */
interface BackupSummary {
  type: string
  label: string
  seconds: number
  repository_bytes: number
  database_bytes: number
  from: string
}

const megabytes = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`

await playbook({
  name: 'backup',
  script: import.meta.url,
  roles: allRoles,
  options: { type: { type: 'string', valueName: 'TYPE', description: 'full, diff or incr (default incr)' } },
  plays: (inventory: Inventory, options: CliOptions) => {
    const type = String(options.playbookOptions.type ?? 'incr')
    if (!TYPES.includes(type)) throw new InputError(`--type ${type}: must be one of ${TYPES.join(', ')}`)
    if (!hasBackupRepository(inventory))
      throw new InputError(`the inventory has no ${backupGroup(inventory)} host: there is nothing to back up to`)
    return [
      {
        name: `Take a ${type} backup of PostgreSQL`,
        hosts: backupGroup(inventory),
        tasks: async (h) => {
          const name = `Take a ${type} backup`
          const outcome = await h.do(command({ cmd: [BACKUP_SCRIPT, type], timeoutMs: 6 * 3600_000, name }))
          if (!outcome.stdout) return
          const s = JSON.parse(outcome.stdout.trim().split('\n').pop()!) as BackupSummary
          h.log(
            `backup ${s.label} (${s.type}, from the ${s.from}): ${megabytes(s.repository_bytes)} in the repository ` +
              `for ${megabytes(s.database_bytes)} of database, ${s.seconds} s`,
          )
        },
      },
    ]
  },
})
